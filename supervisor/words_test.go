package supervisor

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitWords: how an exit reads on the log and /status, and the code a
// shell would give for it.
func TestExitWords(t *testing.T) {
	for _, c := range []struct {
		e     Exit
		words string
		shell int
	}{
		{Exit{Code: 0}, "exit code 0", 0},
		{Exit{Code: 1}, "exit code 1", 1},
		{Exit{Code: 127}, "exit code 127", 127},
		{Exit{Code: -1, Signal: syscall.SIGKILL}, "signal killed", 137},
		{Exit{Code: -1, Signal: syscall.SIGTERM}, "signal terminated", 143},
		{Exit{Code: -1, Signal: syscall.SIGSEGV}, "signal segmentation fault", 139},
		{Exit{Code: -1, Signal: syscall.SIGKILL, OOMKilled: true}, "signal killed by the kernel OOM killer", 137},
	} {
		if got := c.e.String(); got != c.words {
			t.Errorf("%+v.String() = %q, want %q", c.e, got, c.words)
		}
		if got := c.e.ShellCode(); got != c.shell {
			t.Errorf("%+v.ShellCode() = %d, want %d", c.e, got, c.shell)
		}
	}
}

// TestExitFromWaitStatus reads wait statuses as the kernel encodes them:
// the code in the second byte, or the signal in the low seven bits.
func TestExitFromWaitStatus(t *testing.T) {
	for _, c := range []struct {
		ws   syscall.WaitStatus
		want Exit
	}{
		{0, Exit{Code: 0}},
		{3 << 8, Exit{Code: 3}},
		{255 << 8, Exit{Code: 255}},
		{syscall.WaitStatus(syscall.SIGKILL), Exit{Code: -1, Signal: syscall.SIGKILL}},
		{syscall.WaitStatus(syscall.SIGTERM) | 0x80, Exit{Code: -1, Signal: syscall.SIGTERM}}, // core dumped
	} {
		if got := exitFromWaitStatus(c.ws); got != c.want {
			t.Errorf("exitFromWaitStatus(%#x) = %+v, want %+v", uint32(c.ws), got, c.want)
		}
	}
}

// TestEnumWords: every value of the package's enums has its own name, and
// a value out of range reads as such rather than as a real one.
func TestEnumWords(t *testing.T) {
	var events []string
	for k := eventKind(0); k < eventCount; k++ {
		events = append(events, k.String())
	}
	var phases []string
	for p := phase(0); p < phaseCount; p++ {
		phases = append(phases, p.String())
	}
	for _, c := range []struct {
		name  string
		words []string
		want  int
		bad   string // a value out of range
	}{
		{"eventKind", events, int(eventCount), eventCount.String()},
		{"phase", phases, int(phaseCount), phaseCount.String()},
		{"State", []string{StateStarting.String(), StateReady.String(), StateDraining.String(),
			StateStopped.String(), StateBackoff.String()}, 5, State(99).String()},
		{"StopEnd", []string{StopEndNone.String(), StopEndDrained.String(), StopEndBusy.String(),
			StopEndKilled.String()}, 4, StopEnd(99).String()},
		{"guardAction", []string{guardNone.String(), guardRecycle.String(), guardKill.String()}, 3, "-"},
		{"MemoryMeasure", []string{MeasurePSS.String(), MeasureRSS.String()}, 2, MemoryMeasure(99).String()},
	} {
		if len(c.words) != c.want {
			t.Errorf("%s: %d names, want %d", c.name, len(c.words), c.want)
		}
		seen := map[string]bool{}
		for _, w := range c.words {
			if w == "" || w == "unknown" || seen[w] {
				t.Errorf("%s: name %q empty, unknown or twice in %q", c.name, w, c.words)
			}
			seen[w] = true
		}
		if seen[c.bad] {
			t.Errorf("%s: a value out of range reads as a real one, %q", c.name, c.bad)
		}
	}
	if MeasureNone.String() != "" || guardAction(99).String() != "none" {
		t.Errorf("not measured reads %q; an unknown guard action %q", MeasureNone, guardAction(99))
	}
}

// TestPhaseStates: how /status shows each phase of a slot, and why its
// worker takes no requests.
func TestPhaseStates(t *testing.T) {
	want := map[phase]State{
		phaseStarting: StateStarting, phaseReady: StateReady, phaseReplacing: StateReady,
		phaseProbation: StateReady, phaseEjecting: StateDraining, phaseRecycling: StateDraining,
		phaseStopping: StateDraining, phaseBackoff: StateBackoff, phaseStopped: StateStopped,
	}
	for p := phase(0); p < phaseCount; p++ {
		if got := p.State(); got != want[p] {
			t.Errorf("%s.State() = %s, want %s", p, got, want[p])
		}
	}
	if phaseCount.State() != StateStopped {
		t.Errorf("a phase out of range shows as %s", phaseCount.State())
	}
	reasons := []NotRouted{NotRoutedStarting, NotRoutedEjected, NotRoutedDraining, NotRoutedBackoff,
		NotRoutedStopped, NotRoutedFull, NotRoutedNotAccepting}
	for i, r := range reasons {
		if r == "" || slices.Contains(reasons[i+1:], r) {
			t.Errorf("NotRouted %q is empty or not unique", r)
		}
	}
}

// TestStopRecordFields: the log fields of a stop, in proxy and direct mode.
func TestStopRecordFields(t *testing.T) {
	for _, c := range []struct {
		r    StopRecord
		want string
	}{
		{StopRecord{}, "[]"},
		{StopRecord{End: StopEndNone, InFlight: 3}, "[]"},
		{StopRecord{End: StopEndDrained, Counted: CountedRequests}, "[stop drained, then signalled]"},
		{StopRecord{End: StopEndBusy, InFlight: 2, Counted: CountedRequests},
			"[stop signalled while busy requests_in_flight 2]"},
		{StopRecord{End: StopEndKilled, InFlight: 2, Cut: 1, Counted: CountedRequests},
			"[stop killed at the deadline requests_in_flight 2 requests_cut 1]"},
		{StopRecord{End: StopEndKilled, Counted: CountedRequests}, "[stop killed at the deadline requests_cut 0]"},
		{StopRecord{End: StopEndBusy, InFlight: 4, Counted: CountedConnections},
			"[stop signalled while busy connections_open 4]"},
		{StopRecord{End: StopEndKilled, InFlight: 4, Cut: 4, Counted: CountedConnections},
			"[stop killed at the deadline connections_open 4 connections_cut 4]"},
	} {
		if got := fmt.Sprint(c.r.fields()); got != c.want {
			t.Errorf("%+v.fields() = %s, want %s", c.r, got, c.want)
		}
	}
}

// TestStopRecordSettle: a worker that exited by itself as it was being
// killed was busy, not killed; any other record stands.
func TestStopRecordSettle(t *testing.T) {
	killed := StopRecord{End: StopEndKilled, InFlight: 3, Cut: 2, Counted: CountedRequests}
	for _, c := range []struct {
		r    StopRecord
		e    Exit
		want StopRecord
	}{
		{killed, Exit{Code: -1, Signal: syscall.SIGKILL}, killed},
		{killed, Exit{Code: -1, Signal: syscall.SIGKILL, OOMKilled: true}, killed},
		{killed, Exit{Code: 0}, StopRecord{End: StopEndBusy, InFlight: 3, Counted: CountedRequests}},
		{killed, Exit{Code: -1, Signal: syscall.SIGTERM}, StopRecord{End: StopEndBusy, InFlight: 3, Counted: CountedRequests}},
		{StopRecord{End: StopEndBusy, InFlight: 1}, Exit{Code: -1, Signal: syscall.SIGKILL}, StopRecord{End: StopEndBusy, InFlight: 1}},
		{StopRecord{End: StopEndDrained}, Exit{Code: 0}, StopRecord{End: StopEndDrained}},
		{StopRecord{}, Exit{Code: 1}, StopRecord{}},
	} {
		if got := c.r.settle(c.e); got != c.want {
			t.Errorf("%+v.settle(%s) = %+v, want %+v", c.r, c.e, got, c.want)
		}
	}
}

// TestHandlerShareBounds: the share grows with the budget between its
// bounds and never passes the budget itself, down to nothing.
func TestHandlerShareBounds(t *testing.T) {
	for _, budget := range []time.Duration{0, time.Nanosecond, 999 * time.Millisecond, 4 * time.Second,
		4*time.Second + 1, 40 * time.Second, time.Hour, math.MaxInt64} {
		got := HandlerShare(budget)
		if got > budget || got > MaxHandlerShare || (budget >= MinHandlerShare && got < MinHandlerShare) {
			t.Errorf("HandlerShare(%s) = %s: outside [min(%s, budget), %s]", budget, got, MinHandlerShare, MaxHandlerShare)
		}
	}
	prev := time.Duration(0)
	for b := time.Duration(0); b <= time.Minute; b += 250 * time.Millisecond {
		if got := HandlerShare(b); got < prev {
			t.Fatalf("HandlerShare(%s) = %s, less than %s for a smaller budget", b, got, prev)
		} else {
			prev = got
		}
	}
}

// TestStartErrorWords: a failed start reads in percore's words: the
// reason, the exit, and the detail when there is one.
func TestStartErrorWords(t *testing.T) {
	for _, c := range []struct {
		err  *startError
		want string
	}{
		{&startError{exit: Exit{Code: 1}, reason: EndBootFailure}, "boot failure (exit code 1)"},
		{&startError{exit: Exit{Code: 127}, reason: EndStartFailed, detail: "no such file"},
			"start failed (exit code 127): no such file"},
		{&startError{exit: Exit{Code: -1, Signal: syscall.SIGKILL, OOMKilled: true}, reason: EndOOMKill},
			"oom kill (signal killed by the kernel OOM killer)"},
		{&startError{exit: Exit{Code: 1}, reason: EndProbation, detail: "1.2s after it became ready"},
			"died on probation (exit code 1): 1.2s after it became ready"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	wrapped := fmt.Errorf("worker 2: replacement %w", &startError{reason: EndProbation})
	var se *startError
	if !errors.As(wrapped, &se) || se.reason != EndProbation {
		t.Errorf("a wrapped startError is not found: %v", wrapped)
	}
}

// TestShownReasons: what /status shows of a replaced or recycled worker's
// end, and of one the kernel's OOM killer ended.
func TestShownReasons(t *testing.T) {
	oom := Exit{Code: -1, Signal: syscall.SIGKILL, OOMKilled: true}
	for _, c := range []struct {
		got, want string
	}{
		{(&replaceRequest{reason: EndReload}).shown(), "reload"},
		{(&replaceRequest{reason: EndMaxMemory, detail: "memory: pss 2.0MiB over budget 1.0MiB"}).shown(),
			"memory: pss 2.0MiB over budget 1.0MiB"},
		{recycle{reason: EndMaxRequests}.shown(), "max-requests"},
		{recycle{reason: EndMaxMemory, detail: "memory: x"}.shown(), "memory: x"},
		{oomShown(Exit{Code: 0}, "reload"), "reload"},
		{oomShown(oom, "memory: x"), "oom kill"},
		{oomOr(Exit{Code: 1}, EndCrash).String(), "crash"},
		{oomOr(oom, EndCrash).String(), "oom kill"},
		{oomOr(oom, EndStopped).String(), "oom kill"},
	} {
		if c.got != c.want {
			t.Errorf("shown %q, want %q", c.got, c.want)
		}
	}
}

// TestLoopReason: a memory loop's reason keeps the guard's figures without
// its "memory: ", and rounds how long the worker served.
func TestLoopReason(t *testing.T) {
	g := Guard{Budget: 100 << 20, Hard: 150 << 20}
	for _, c := range []struct {
		reason string
		served time.Duration
		want   string
	}{
		{g.overBudget(101<<20, MeasurePSS), 1234567 * time.Microsecond,
			"memory loop: pss 101.0MiB over budget 100.0MiB 1.23s after ready"},
		{g.overBudget(100<<20+512, MeasureRSS), 0, "memory loop: rss 102400.5KiB over budget 102400.0KiB 0s after ready"},
		{"other words", 5 * time.Millisecond, "memory loop: other words 10ms after ready"},
	} {
		if got := loopReason(c.reason, c.served); got != c.want {
			t.Errorf("loopReason(%q, %s) = %q, want %q", c.reason, c.served, got, c.want)
		}
		if got := loopReason(c.reason, c.served); !strings.HasPrefix(got, EndMemoryLoop.String()+": ") {
			t.Errorf("loopReason %q does not start with %q", got, EndMemoryLoop)
		}
	}
}

// TestGuardHurry: a worker in a memory loop is recycled without its
// backoff half-way to the hard limit, and no further than half of
// max(32MiB, 10%) above its budget.
func TestGuardHurry(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		budget, hard, want uint64
	}{
		{100 * mib, 200 * mib, 116 * mib},    // 32MiB margin, halved
		{1000 * mib, 2000 * mib, 1050 * mib}, // 10% margin, halved
		{100 * mib, 110 * mib, 105 * mib},    // half-way to a near hard limit
		{100 * mib, 100 * mib, 100 * mib},    // no room at all
		{100 * mib, math.MaxUint64, 116 * mib},
	} {
		g := Guard{Budget: c.budget, Hard: c.hard}
		if got := g.hurry(); got != c.want {
			t.Errorf("Guard{%d MiB, %d}.hurry() = %.1f MiB, want %.1f MiB", c.budget/mib, c.hard,
				float64(got)/mib, float64(c.want)/mib)
		}
	}
}
