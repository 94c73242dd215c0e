package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/percore/percore/health"
)

// The table of percore status and top says why a ready worker takes no new
// requests, as the status page does, instead of showing it as plainly ready.
func TestStatusTableSaysWhyAReadyWorkerIsNotRouted(t *testing.T) {
	st := health.Status{Workers: []health.WorkerStatus{
		{ID: 0, PID: 100, State: "ready", Ready: true},
		{ID: 1, PID: 101, State: "ready", NotRouted: "not accepting", NotAccepting: "accept queue full: 128 of 128"},
		{ID: 2, PID: 102, State: "ready", NotRouted: "ejected"},
		{ID: 3, PID: 103, State: "starting", NotRouted: "starting"},
	}}
	var out bytes.Buffer
	printStatus(&out, st, st)
	want := map[string]string{"100": "ready", "101": "ready, not accepting", "102": "ready, ejected", "103": "starting"}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		state, ok := want[f[1]]
		if !ok {
			continue
		}
		if got := strings.Join(f[2:2+len(strings.Fields(state))], " "); got != state {
			t.Errorf("worker pid %s shows state %q, want %q:\n%s", f[1], got, state, out.String())
		}
		delete(want, f[1])
	}
	if len(want) > 0 {
		t.Errorf("no row for pids %v:\n%s", want, out.String())
	}
}
