package supervisor

import (
	"slices"
	"strings"
	"testing"
)

// TestEndReasonsAreOneList: the reasons are distinct words that a
// LastReason can carry before its detail, the counted ones first.
func TestEndReasonsAreOneList(t *testing.T) {
	reasons := EndReasons()
	if len(reasons) != len(endReasons) || len(reasons) < 14 {
		t.Fatalf("EndReasons() = %q", reasons)
	}
	seen := map[EndReason]bool{}
	counted := true
	for _, r := range reasons {
		if seen[r] {
			t.Errorf("%q twice", r)
		}
		seen[r] = true
		if r == "" || strings.ContainsAny(r.String(), ":\n") || strings.ToLower(r.String()) != r.String() {
			t.Errorf("%q: want lower-case words without a colon", r)
		}
		if r.Counted() && !counted {
			t.Errorf("%q is counted but listed after one that is not", r)
		}
		counted = r.Counted()
		if r.Planned() && !r.Counted() {
			t.Errorf("%q is planned but never counted", r)
		}
	}
	for _, r := range []EndReason{EndStopped, EndReplaced, EndProbation} {
		if r.Counted() {
			t.Errorf("%q says why, it is counted under another reason", r)
		}
	}
	if EndReason("krash").Counted() || EndReason("krash").Planned() {
		t.Error("a reason not in the list is counted or planned")
	}
	reasons[0] = "changed"
	if EndReasons()[0] != EndCrash {
		t.Error("EndReasons returns the list itself: a caller can change it")
	}
}

// TestEndReasonsHelp: the help names every counted reason once, on the
// side of its kind, and none that is never counted.
func TestEndReasonsHelp(t *testing.T) {
	help := EndReasonsHelp()
	unplanned, planned, ok := strings.Cut(help, " (unplanned); ")
	if !ok || !strings.HasSuffix(planned, " (planned)") {
		t.Fatalf("help %q: want the unplanned, then the planned", help)
	}
	for _, r := range EndReasons() {
		side, other := unplanned, planned
		if r.Planned() {
			side, other = planned, unplanned
		}
		switch {
		case !r.Counted() && strings.Contains(help, r.String()):
			t.Errorf("help names %q, which is never counted: %s", r, help)
		case r.Counted() && !hasWord(side, r.String()):
			t.Errorf("help does not name %q among its kind: %s", r, help)
		case r.Counted() && hasWord(other, r.String()):
			t.Errorf("help names %q on both sides: %s", r, help)
		}
	}
}

// hasWord reports whether the comma-separated list s has an item that
// is w, or w with a note in parentheses.
func hasWord(s, w string) bool {
	for _, item := range strings.Split(s, ", ") {
		if item == w || strings.HasPrefix(item, w+" (") {
			return true
		}
	}
	return false
}

// TestMachineCountsOnlyEndReasons drives the slot's machine with every
// event of the doc table in every phase, exits by the OOM killer too, and
// checks that whatever it counts is a counted one of EndReasons.
func TestMachineCountsOnlyEndReasons(t *testing.T) {
	all := map[EndReason]int{}
	for p := phase(0); p < phaseCount; p++ {
		for _, label := range labels() {
			for _, oom := range []bool{false, true} {
				m, fx := machineIn(t, p)
				ev := eventFor(m, label)
				ev.exit.OOMKilled = oom
				switch ev.kind {
				case evEject:
					ev.reason = EndHealthCheck
				case evRecycle:
					ev.reason = EndMaxRequests
				}
				m.handle(ev)
				if m.cur != nil {
					m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 1, OOMKilled: oom}})
				}
				for r, n := range fx.counts {
					all[r] += n
				}
			}
		}
	}
	for r := range all {
		if !slices.Contains(EndReasons(), r) || !r.Counted() {
			t.Errorf("the machine counted %q, not a counted one of EndReasons()", r)
		}
	}
	for _, r := range []EndReason{EndCrash, EndBootFailure, EndOOMKill, EndHealthCheck, EndMaxMemory, EndReload} {
		if all[r] == 0 {
			t.Errorf("no %q counted: the test no longer reaches it (%v)", r, all)
		}
	}
}
