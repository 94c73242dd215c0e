package supervisor

import (
	"time"
)

// EjectGrace is how long an ejected worker has between the stop signal and
// SIGKILL: a worker whose event loop is blocked never handles the signal.
const EjectGrace = 2 * time.Second

// Eject takes the serving worker with key out of rotation at once and
// restarts it, for example after failed health checks. The restart counts
// in WorkerStatus.Restarts with reason as its LastReason. Unknown keys are
// ignored.
func (s *Supervisor) Eject(key uint64, reason string) {
	sl, w := s.slotOf(key)
	if sl == nil {
		return
	}
	sl.mu.Lock()
	already := sl.ejected != ""
	sl.ejected = reason
	sl.state, sl.readySince = StateDraining, time.Time{}
	sl.mu.Unlock()
	if already {
		return
	}
	w.log.Warn("ejecting worker: out of rotation and restarting", "reason", reason)
	s.cfg.Router.Drain(w.key)
	if err := signalGroup(w.pid, s.cfg.StopSignal); err != nil {
		w.log.Warn("send stop signal", "error", err)
	}
	s.retiring.Add(1)
	go s.killAfter(sl, w, EjectGrace)
}

// killAfter SIGKILLs the worker's group if it has not exited after d. The
// slot loop, the worker's one waiter, observes the exit; this only watches
// the clock and the slot's state.
func (s *Supervisor) killAfter(sl *slot, w *worker, d time.Duration) {
	defer s.retiring.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stopping:
		return
	}
	sl.mu.Lock()
	still := sl.cur == w
	sl.mu.Unlock()
	if still {
		s.killGroup(w)
	}
}

// SetHealthFailures records a worker's consecutive failed health checks, for
// status.
func (s *Supervisor) SetHealthFailures(key uint64, n int) {
	if sl, _ := s.slotOf(key); sl != nil {
		sl.mu.Lock()
		sl.healthFails = n
		sl.mu.Unlock()
	}
}
