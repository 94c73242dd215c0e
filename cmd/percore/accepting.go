package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/percore/percore/direct"
	"github.com/percore/percore/supervisor"
)

// In direct mode a worker may serve (it answers its private listener and
// percore's pings) and yet not accept on its public socket: out of file
// descriptors, or stuck. The sockets see it (direct.Sockets.NotAccepting)
// and steer new connections around it; readiness, /status and /metrics
// leave it out too.

// watchAccepting starts the sockets' watch of whether each slot's worker
// accepts; the supervisor tells which process serves each slot. Closing
// the sockets ends it.
func watchAccepting(sockets *direct.Sockets, sup *supervisor.Supervisor) {
	sockets.WatchAccepting(direct.AcceptConfig{PIDs: func() map[int]int {
		pids := make(map[int]int)
		for _, ws := range sup.Snapshot() {
			if ws.PID > 0 {
				pids[ws.ID] = ws.PID
			}
		}
		return pids
	}})
}

// notAccepting returns, by slot, why a worker does not accept; nil in
// proxy mode.
func notAccepting(sockets *direct.Sockets) map[int]string {
	if sockets == nil {
		return nil
	}
	return sockets.NotAccepting()
}

// workersReady counts the workers that take new connections: ready, and in
// direct mode accepting.
func workersReady(sup *supervisor.Supervisor, sockets *direct.Sockets) int {
	out := notAccepting(sockets)
	n := 0
	for _, ws := range sup.Snapshot() {
		if _, stuck := out[ws.ID]; ws.NotRouted == "" && !stuck {
			n++
		}
	}
	return n
}

// NotReady implements health.NotReadyWorkers: the ready workers that do not
// accept.
func (a *actors) NotReady() []string {
	out := notAccepting(a.direct)
	var lines []string
	for _, slot := range slices.Sorted(maps.Keys(out)) {
		lines = append(lines, fmt.Sprintf("worker %d not accepting: %s", slot, out[slot]))
	}
	return lines
}

// startWorkers is how many workers must be ready at once before /readyz
// first answers 200, nil for --ready-min alone: in direct mode, every worker
// of the plan. A client's connection stays with the worker that accepted
// it, so connections opened while the first worker alone serves stay on it
// after the others start.
func (a *actors) startWorkers() func() int {
	if a.mode != modeDirect {
		return nil
	}
	return func() int { return a.live.Plan().Workers }
}

// helpNotAccepting is the help of percore_direct_workers_not_accepting.
const helpNotAccepting = "Workers that serve but do not accept on their public socket (--mode direct): its accept " +
	"queue full, or not drained for 1 s, or the worker out of file descriptors; new connections go to the others."
