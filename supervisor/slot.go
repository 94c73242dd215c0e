package supervisor

import (
	"context"
	"errors"
	"sync"
	"time"
)

// slot is one of the N places a worker runs in. A slot keeps one worker
// alive: it starts it, waits until it is ready, routes to it, and replaces it
// with backoff when it exits.
type slot struct {
	id int

	mu           sync.Mutex // protects the fields below
	state        State
	cur          *worker
	restarts     int
	bootFailures int
	lastExit     *Exit
	lastReason   string
	readySince   time.Time
	lastTail     []string
}

// WorkerStatus is a snapshot of one slot.
type WorkerStatus struct {
	ID         int       // the slot, as in PERCORE_WORKER_ID
	PID        int       // 0 while no process runs
	Port       int       // the worker's loopback port
	State      State     // where the worker is in its life
	Restarts   int       // processes started in this slot after the first
	LastExit   *Exit     // how the previous process ended, nil if none did
	LastReason string    // why it ended: "crash", "boot failure", "not ready in time"
	Started    time.Time // when the current process started
	ReadySince time.Time // when it became ready; zero unless ready
}

func (sl *slot) status() WorkerStatus {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	ws := WorkerStatus{ID: sl.id, State: sl.state, Restarts: sl.restarts, LastExit: sl.lastExit,
		LastReason: sl.lastReason, ReadySince: sl.readySince}
	if sl.cur != nil {
		ws.PID, ws.Port, ws.Started = sl.cur.pid, sl.cur.port, sl.cur.started
	}
	return ws
}

func (sl *slot) set(state State, w *worker) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.state, sl.cur = state, w
	if state == StateReady {
		sl.readySince = time.Now()
	} else {
		sl.readySince = time.Time{}
	}
}

// runSlot is the life of one slot: start, serve, replace, until stop.
func (s *Supervisor) runSlot(sl *slot) {
	defer s.slotsWG.Done()
	backoff := s.cfg.BackoffMin
	for {
		outcome := s.runWorker(sl)
		if outcome.stopped {
			sl.set(StateStopped, nil)
			return
		}
		if outcome.stable {
			backoff = s.cfg.BackoffMin
		}
		if s.givingUp(sl, outcome) {
			return
		}
		sl.set(StateBackoff, nil)
		if !s.sleep(backoff) {
			sl.set(StateStopped, nil)
			return
		}
		backoff = min(backoff*2, s.cfg.BackoffMax)
		sl.mu.Lock()
		sl.restarts++
		sl.mu.Unlock()
	}
}

// outcome is how one worker's life in a slot ended.
type outcome struct {
	stopped bool // the supervisor stopped it
	failed  bool // it failed before serving, or soon after
	stable  bool // it served long enough to forget earlier failures
}

// runWorker starts one worker in the slot and returns when it is gone.
func (s *Supervisor) runWorker(sl *slot) outcome {
	sl.set(StateStarting, nil)
	w, err := s.spawn(sl.id)
	if err != nil {
		s.log.Error("worker failed to start", "worker", sl.id, "error", err)
		s.recordExit(sl, Exit{Code: 127}, "start failed", err.Error(), nil)
		return outcome{failed: true}
	}
	sl.set(StateStarting, w)
	w.log.Info("worker starting", "port", w.port)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	exit, err := s.awaitReady(ctx, w)
	cancel()
	switch {
	case exit != nil:
		w.log.Error("worker exited before it was ready", "exit", exit.String())
		s.recordExit(sl, *exit, "boot failure", "", w)
		return outcome{failed: true}
	case errors.Is(err, errNotReady):
		w.log.Error("worker did not listen on its port in time; is the app listening on process.env.PORT?",
			"port", w.port, "ready_timeout", s.cfg.ReadyTimeout)
		e := s.kill(w)
		s.recordExit(sl, e, "not ready in time", "", w)
		return outcome{failed: true}
	case err != nil:
		s.stopWorker(sl, w)
		return outcome{stopped: true}
	}
	return s.serve(sl, w)
}

// serve routes traffic to a ready worker until it exits or the supervisor stops.
func (s *Supervisor) serve(sl *slot, w *worker) outcome {
	sl.set(StateReady, w)
	s.cfg.Router.Add(w.key, sl.id, w.addr())
	w.log.Info("worker ready", "addr", w.addr(), "startup", time.Since(w.started).Round(time.Millisecond))
	select {
	case e := <-w.exit:
		<-s.cfg.Router.Drain(w.key)
		s.killGroup(w)
		up := time.Since(w.started)
		w.log.Error("worker exited", "exit", e.String(), "uptime", up.Round(time.Millisecond))
		failed := up < s.cfg.MinUptime
		reason := "crash"
		if failed {
			reason = "boot failure"
		}
		s.recordExit(sl, e, reason, "", w)
		return outcome{failed: failed, stable: up >= s.cfg.StableAfter}
	case <-s.stopping:
		s.stopWorker(sl, w)
		return outcome{stopped: true}
	}
}

func (s *Supervisor) stopWorker(sl *slot, w *worker) {
	sl.set(StateDraining, w)
	w.log.Info("worker draining")
	e := s.stop(s.stopCtx, w, s.cfg.Router.Drain(w.key))
	w.log.Info("worker stopped", "exit", e.String())
	sl.mu.Lock()
	sl.lastExit, sl.lastReason = &e, "stopped"
	sl.mu.Unlock()
}

// recordExit notes how a worker ended and, when it failed at boot, counts it.
func (s *Supervisor) recordExit(sl *slot, e Exit, reason, detail string, w *worker) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.lastExit, sl.lastReason = &e, reason
	if reason == "crash" {
		sl.bootFailures = 0
		return
	}
	sl.bootFailures++
	if detail != "" {
		sl.lastReason = reason + ": " + detail
	}
	if w != nil {
		w.tail.add([]byte("(" + e.String() + ")"))
		sl.lastTail = w.tail.Lines()
	}
}

// givingUp reports a crash loop: the slot keeps failing at boot while no
// worker serves. Other slots keep trying while any worker is ready.
func (s *Supervisor) givingUp(sl *slot, o outcome) bool {
	if !o.failed {
		return false
	}
	sl.mu.Lock()
	n, last, tail := sl.bootFailures, sl.lastReason, sl.lastTail
	if sl.lastExit != nil {
		last = sl.lastReason + ", " + sl.lastExit.String()
	}
	sl.mu.Unlock()
	if n < s.cfg.MaxBootFailures || s.readyCount() > 0 {
		return false
	}
	err := &CrashLoopError{Slot: sl.id, Attempts: n, Last: last, Output: tail}
	select {
	case s.fatal <- err:
	default:
	}
	sl.set(StateStopped, nil)
	return true
}

// sleep waits d, or less when the supervisor stops; it reports whether the
// full time passed.
func (s *Supervisor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stopping:
		return false
	}
}
