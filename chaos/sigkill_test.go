//go:build chaos

package chaos

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPercoreKilled SIGKILLs percore itself. Its direct workers die with it
// (parent-death signal) within a second. What happens to the grandchildren
// of wrapper commands must match docs/operations.md: outside a PID namespace they
// survive a SIGKILL of percore; inside one (percore as PID 1) nothing does.
func TestPercoreKilled(t *testing.T) {
	needNode(t)
	sh := []string{"sh", "-c", "node " + appPath("app.js") + "; true"}
	npm := []string{"npm", "--prefix", appPath("npm-app"), "start"}
	node := []string{"node", appPath("app.js")}
	// --kill-child: should unshare die first, percore (and with it the
	// namespace) goes too.
	unshare := []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}
	cases := []struct {
		id, name        string
		command         []string
		wrapper         []string
		grandchildrenOK bool // they may outlive percore (docs/operations.md says so)
	}{
		{"8a", "`node app.js`", node, nil, false},
		{"8b", "`sh -c 'node app.js; true'`", sh, nil, true},
		{"8c", "`npm start`", npm, nil, true},
		{"8d", "`sh -c 'node app.js; true'` in a PID namespace", sh, unshare, false},
		{"8e", "`npm start` in a PID namespace", npm, unshare, false},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			f := book.row(t, c.id, "percore SIGKILLed: workers are "+c.name)
			if _, err := exec.LookPath(c.command[0]); err != nil {
				t.Skipf("%s is not installed", c.command[0])
			}
			if c.wrapper != nil {
				if err := exec.Command(c.wrapper[0], append(c.wrapper[1:], "true")...).Run(); err != nil {
					t.Skipf("cannot create a PID namespace here: %v", err)
				}
			}
			const workers = 2
			args := append([]string{"--workers", "2", "--"}, c.command...)
			in := start(t, workers, options{args: args, wrapper: c.wrapper, survivorsExpected: c.grandchildrenOK})
			killAndWatch(t, f, in, c.wrapper != nil, c.grandchildrenOK)
		})
	}
}

// killAndWatch SIGKILLs percore and watches /proc until its direct workers
// and their descendants are gone (or 2 s), then checks and reports.
func killAndWatch(t *testing.T, f *figures, in *instance, namespaced, grandchildrenOK bool) {
	percore := in.pid()
	if namespaced {
		kids := childrenOf(in.pid())
		if len(kids) != 1 {
			t.Fatalf("cannot find percore under unshare %d: children %v", in.pid(), kids)
		}
		percore = kids[0]
	}
	var direct, grand []int
	for _, pid := range markedProcesses(in.mark) {
		if pid == percore || pid == in.pid() {
			continue
		}
		if _, ppid, _ := procStat(pid); ppid == percore {
			direct = append(direct, pid)
		} else {
			grand = append(grand, pid)
		}
	}
	if len(direct) != 2 {
		t.Fatalf("percore %d has %d direct workers, want 2: %v", percore, len(direct), direct)
	}
	names := func(pids []int) string {
		var s []string
		for _, p := range pids {
			s = append(s, strings.Fields(cmdline(p))[0])
		}
		slices.Sort(s)
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(slices.Compact(s), ", ")
	}
	what := fmt.Sprintf("%d direct workers (%s), %d grandchildren (%s)", len(direct), names(direct), len(grand), names(grand))

	killed := time.Now()
	if err := syscall.Kill(percore, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL percore %d: %v", percore, err)
	}
	gone := map[int]time.Duration{}
	all := append(slices.Clone(direct), grand...)
	for time.Since(killed) < 2*time.Second && len(gone) < len(all) {
		for _, pid := range all {
			if _, ok := gone[pid]; !ok && !alive(pid) {
				gone[pid] = time.Since(killed)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	slowest := func(pids []int) (time.Duration, int) {
		var d time.Duration
		left := 0
		for _, p := range pids {
			g, ok := gone[p]
			if !ok {
				left++
				continue
			}
			d = max(d, g)
		}
		return d, left
	}
	dDirect, leftDirect := slowest(direct)
	dGrand, leftGrand := slowest(grand)
	f.add("%s; after SIGKILL of percore: direct workers gone within %s, %d left; grandchildren: %d of %d alive 2 s later",
		what, ms(dDirect), leftDirect, leftGrand, len(grand))
	if len(grand) > 0 && leftGrand < len(grand) {
		f.add("the others gone within %s", ms(dGrand))
	}
	if leftDirect > 0 || dDirect > time.Second {
		t.Errorf("%d direct workers outlived percore by more than 1s (slowest gone after %s)", leftDirect, dDirect)
	}
	switch {
	case grandchildrenOK && leftGrand != len(grand):
		t.Errorf("%d of %d grandchildren survived; docs/operations.md says they survive a SIGKILL of percore outside a PID namespace",
			leftGrand, len(grand))
	case !grandchildrenOK && leftGrand > 0:
		t.Errorf("%d of %d grandchildren outlived percore", leftGrand, len(grand))
	}
	in.waitExitCode(5 * time.Second)
}
