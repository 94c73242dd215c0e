package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// slot is one of the N places a worker runs in. A slot keeps one worker
// alive: it starts it, waits until it is ready, routes to it, replaces it on
// request (reload, recycling) with the new worker ready before the old one
// drains, and restarts it with backoff when it exits.
type slot struct {
	id      int
	replace chan replaceRequest // read only by the slot's loop
	remove  chan struct{}       // closed when the slot is scaled away
	rmOnce  sync.Once

	mu           sync.Mutex // protects the fields below
	state        State
	cur          *worker
	restarts     int
	replaced     int
	bootFailures int
	lastExit     *Exit
	lastReason   string
	readySince   time.Time
	lastTail     []string
	rss          uint64
	recycling    bool
	ejected      string // why the serving worker was taken out, if it was
	killed       string // why the Guard killed the slot's worker, if it did
	healthFails  int
}

// replaceRequest asks a slot to replace its worker. done receives nil once
// the old worker has stopped, or why the replacement failed (the old worker
// then keeps serving).
type replaceRequest struct {
	reason    string // what is counted: "reload", "max-memory", "max-requests"
	detail    string // what /status shows, when more than reason
	stopFirst bool   // stop the old worker before the replacement starts
	done      chan error
}

// shown is the reason /status gives for the replaced worker's end.
func (r replaceRequest) shown() string {
	if r.detail != "" {
		return r.detail
	}
	return r.reason
}

func newSlot(id int) *slot {
	return &slot{id: id, state: StateStarting, replace: make(chan replaceRequest), remove: make(chan struct{})}
}

// WorkerStatus is a snapshot of one slot.
type WorkerStatus struct {
	ID          int       // the slot, as in PERCORE_WORKER_ID
	PID         int       // 0 while no process runs
	Port        int       // the worker's loopback port
	State       State     // where the worker is in its life
	Restarts    int       // unplanned restarts: crashes and failed starts
	Replaced    int       // planned replacements: reloads and recycling
	LastExit    *Exit     // how the previous process ended, nil if none did
	LastReason  string    // why it ended: "crash", "boot failure", "not ready in time", "reload", "max-memory", ...
	Started     time.Time // when the current process started
	ReadySince  time.Time // when it became ready; zero unless ready
	RSS         uint64    // resident memory of the worker's process group, bytes (0 if unknown)
	HealthFails int       // consecutive failed health checks of the serving worker
	Key         uint64    // the serving worker's router key (0 if none)
	Addr        string    // the serving worker's loopback address ("" if none)
}

func (sl *slot) status() WorkerStatus {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	ws := WorkerStatus{ID: sl.id, State: sl.state, Restarts: sl.restarts, Replaced: sl.replaced,
		LastExit: sl.lastExit, LastReason: sl.lastReason, ReadySince: sl.readySince, RSS: sl.rss,
		HealthFails: sl.healthFails}
	if sl.cur != nil {
		ws.PID, ws.Port, ws.Started = sl.cur.pid, sl.cur.port, sl.cur.started
		ws.Key, ws.Addr = sl.cur.key, sl.cur.addr()
	}
	return ws
}

func (sl *slot) set(state State, w *worker) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cur != w {
		sl.rss, sl.healthFails, sl.killed = 0, 0, ""
	}
	sl.state, sl.cur = state, w
	if state == StateReady {
		sl.readySince = time.Now()
	} else {
		sl.readySince = time.Time{}
	}
}

// current returns the worker serving in the slot, if it is ready.
func (sl *slot) current() *worker {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.state != StateReady {
		return nil
	}
	return sl.cur
}

func (sl *slot) retire() { sl.rmOnce.Do(func() { close(sl.remove) }) }

// runSlot is the life of one slot: start, serve, replace, until stop.
func (s *Supervisor) runSlot(sl *slot) {
	defer s.slotsWG.Done()
	backoff := s.cfg.BackoffMin
	for {
		o := s.runWorker(sl)
		if o.stopped {
			sl.set(StateStopped, nil)
			return
		}
		if o.stable {
			backoff = s.cfg.BackoffMin
		}
		if o.replaced {
			continue
		}
		if o.failed {
			s.firstOutcome()
		}
		if s.givingUp(sl, o) {
			return
		}
		sl.set(StateBackoff, nil)
		s.log.Info("worker restarting after backoff", "worker", sl.id, "backoff", backoff)
		if !s.sleep(sl, backoff) {
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
	stopped  bool // the supervisor stopped it
	failed   bool // it failed before serving, or soon after
	stable   bool // it served long enough to forget earlier failures
	replaced bool // it was stopped to be replaced: start the next one now
}

// errStopping says a replacement was cut short by a stop.
var errStopping = errors.New("percore is stopping")

// runWorker starts one worker in the slot and returns when it is gone.
func (s *Supervisor) runWorker(sl *slot) outcome {
	sl.set(StateStarting, nil)
	w, err := s.startReady(sl)
	var fail *startError
	var short *shortageError
	switch {
	case errors.As(err, &short):
		s.recordShortage(sl, short)
		return outcome{}
	case errors.As(err, &fail):
		s.recordExit(sl, fail.exit, fail.reason, fail.detail, fail.w)
		return outcome{failed: true}
	case err != nil:
		return outcome{stopped: true}
	}
	return s.serve(sl, w)
}

// startError says why a worker never became ready.
type startError struct {
	w      *worker // nil when the process could not be started
	exit   Exit
	reason string
	detail string
}

func (e *startError) Error() string {
	msg := e.reason + " (" + e.exit.String() + ")"
	if e.detail != "" {
		msg += ": " + e.detail
	}
	if e.w != nil {
		if lines := e.w.tail.Lines(); len(lines) > 0 {
			msg += "; last output: " + lines[len(lines)-1]
		}
	}
	return msg
}

// startReady starts a worker in the slot and waits until it listens. It
// returns a *startError when the worker fails, or errStopping when the
// supervisor stops or the slot is removed meanwhile.
func (s *Supervisor) startReady(sl *slot) (*worker, error) {
	w, err := s.spawn(sl.id)
	if err != nil && outOfResources(err) {
		s.log.Warn("cannot start a worker: percore is out of file descriptors or memory; "+
			"retrying with backoff, not counted as a failed start", "worker", sl.id, "error", err)
		return nil, &shortageError{err: err}
	}
	if err != nil {
		s.log.Error("worker failed to start", "worker", sl.id, "error", err)
		return nil, &startError{exit: Exit{Code: 127}, reason: "start failed", detail: err.Error()}
	}
	if sl.current() == nil {
		sl.set(StateStarting, w)
	}
	w.log.Info("worker starting", "addr", w.addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancelOnStop(ctx, cancel, s.stopping, sl.remove)
	exit, err := s.awaitReady(ctx, w)
	var short *shortageError
	switch {
	case errors.As(err, &short):
		w.log.Warn("cannot check whether the worker listens: percore is out of file descriptors or memory; "+
			"restarting it with backoff, not counted as a failed start", "error", err)
		s.kill(w)
		return nil, short
	case exit != nil:
		w.awaitOutput()
		w.forget()
		w.log.Error("worker exited before it was ready", "exit", exit.String())
		sl.mu.Lock()
		killed := ""
		if sl.cur == w {
			killed = sl.killed
		}
		sl.mu.Unlock()
		return nil, &startError{w: w, exit: *exit, reason: "boot failure", detail: killed}
	case errors.Is(err, errNotReady):
		w.log.Error("worker did not listen on its port in time; is the app listening on process.env.PORT?",
			"addr", w.addr(), "ready_timeout", s.cfg.ReadyTimeout)
		exit := s.kill(w)
		w.awaitOutput()
		return nil, &startError{w: w, exit: exit, reason: "not ready in time"}
	case err != nil:
		stopCtx, cancelStop := s.stopContext()
		defer cancelStop()
		s.stopWorker(sl, w, stopCtx)
		return nil, errStopping
	}
	return w, nil
}

// cancelOnStop cancels ctx when the supervisor stops or the slot goes.
func cancelOnStop(ctx context.Context, cancel context.CancelFunc, stopping, removed <-chan struct{}) {
	select {
	case <-stopping:
		cancel()
	case <-removed:
		cancel()
	case <-ctx.Done():
	}
}

// serve routes traffic to a ready worker until it exits, the supervisor
// stops, or the slot is removed; it replaces the worker when asked.
func (s *Supervisor) serve(sl *slot, w *worker) outcome {
	s.route(sl, w)
	for {
		select {
		case e := <-w.exit:
			return s.crashed(sl, w, e)
		case <-s.stopping:
			s.stopWorker(sl, w, s.stopCtx)
			return outcome{stopped: true}
		case <-sl.remove:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			s.stopWorker(sl, w, ctx)
			cancel()
			return outcome{stopped: true}
		case req := <-sl.replace:
			if req.stopFirst {
				return s.stopThenReplace(sl, w, req)
			}
			w = s.replaceWorker(sl, w, req)
		}
	}
}

// route makes a ready worker take traffic.
func (s *Supervisor) route(sl *slot, w *worker) {
	sl.set(StateReady, w)
	s.cfg.Router.Add(w.key, sl.id, w.addr())
	s.firstOutcome()
	w.log.Info("worker ready", "addr", w.addr(), "startup", time.Since(w.started).Round(time.Millisecond))
}

// crashed handles a serving worker's unplanned exit.
func (s *Supervisor) crashed(sl *slot, w *worker, e Exit) outcome {
	s.killGroup(w)
	w.forget()
	<-s.cfg.Router.Drain(w.key)
	w.awaitOutput()
	up := time.Since(w.started)
	w.log.Error("worker exited", "exit", e.String(), "uptime", up.Round(time.Millisecond))
	s.diagnose(w, e)
	failed := up < s.cfg.MinUptime
	reason := "crash"
	if failed {
		reason = "boot failure"
	}
	detail := ""
	sl.mu.Lock()
	if sl.ejected != "" {
		reason, failed = sl.ejected, false
		sl.ejected = ""
	}
	if sl.killed != "" {
		reason, detail, failed = "max-memory", sl.killed, false
	}
	sl.mu.Unlock()
	s.recordExit(sl, e, reason, detail, w)
	return outcome{failed: failed, stable: up >= s.cfg.StableAfter}
}

// replaceWorker starts a replacement for old; once it is ready it takes the
// traffic and old drains and stops in the background, after which req is
// answered. If the replacement fails, old keeps serving.
func (s *Supervisor) replaceWorker(sl *slot, old *worker, req replaceRequest) *worker {
	old.log.Info("replacing worker", "reason", req.shown())
	nw, err := s.startReady(sl)
	if err != nil {
		if errors.Is(err, errStopping) {
			req.done <- err
			return old
		}
		old.log.Error("replacement failed; the old worker keeps serving", "reason", req.reason, "error", err)
		req.done <- fmt.Errorf("worker %d: replacement %w", sl.id, err)
		return old
	}
	s.route(sl, nw)
	sl.mu.Lock()
	sl.replaced++
	sl.recycling = false
	sl.mu.Unlock()
	s.retiring.Add(1)
	go s.retireWorker(sl, old, req)
	return nw
}

// retireWorker drains a replaced worker: its in-flight requests and open
// tunnels may finish until the shutdown timeout. It then gets the stop
// signal and HurryGrace before SIGKILL, and the request is answered.
func (s *Supervisor) retireWorker(sl *slot, w *worker, req replaceRequest) {
	defer s.retiring.Done()
	w.log.Info("worker draining", "reason", req.shown())
	drain, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	go cancelOnStop(drain, cancel, s.stopping, nil)
	select {
	case <-s.cfg.Router.Drain(w.key):
	case <-drain.Done():
		w.log.Warn("drain deadline reached with work in flight", "reason", req.reason)
	}
	cancel()
	grace, cancelGrace := context.WithTimeout(context.Background(), HurryGrace)
	defer cancelGrace()
	drained := make(chan struct{})
	close(drained)
	e := s.stop(grace, w, drained)
	w.log.Info("worker stopped", "exit", e.String(), "reason", req.shown())
	s.count(req.reason)
	sl.mu.Lock()
	sl.lastExit, sl.lastReason = &e, req.shown()
	sl.mu.Unlock()
	req.done <- nil
}

// stopThenReplace drains and stops a worker whose replacement would not
// fit beside it in memory, then has the slot's loop start the replacement
// at once. The slot serves nothing in between; a worker that passes the
// Guard's hard limit while it drains is killed.
func (s *Supervisor) stopThenReplace(sl *slot, w *worker, req replaceRequest) outcome {
	w.log.Info("replacing worker: stopping it first, there is no memory for a replacement beside it",
		"reason", req.shown())
	sl.set(StateDraining, w)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	go cancelOnStop(ctx, cancel, s.stopping, nil)
	e := s.stop(ctx, w, s.cfg.Router.Drain(w.key))
	reason, shown := req.reason, req.shown()
	sl.mu.Lock()
	if sl.killed != "" {
		shown = sl.killed
	}
	sl.replaced++
	sl.recycling = false
	sl.lastExit, sl.lastReason = &e, shown
	sl.mu.Unlock()
	w.log.Info("worker stopped", "exit", e.String(), "reason", shown)
	s.count(reason)
	req.done <- nil
	select {
	case <-s.stopping:
		return outcome{stopped: true}
	default:
	}
	return outcome{replaced: true}
}

func (s *Supervisor) stopWorker(sl *slot, w *worker, ctx context.Context) {
	sl.set(StateDraining, w)
	w.log.Info("worker draining")
	e := s.stop(ctx, w, s.cfg.Router.Drain(w.key))
	w.log.Info("worker stopped", "exit", e.String())
	sl.mu.Lock()
	sl.lastExit, sl.lastReason = &e, "stopped"
	sl.mu.Unlock()
}

// stopContext is the stop's budget once Stop was called, else one shutdown
// timeout from now.
func (s *Supervisor) stopContext() (context.Context, context.CancelFunc) {
	select {
	case <-s.stopping:
		return s.stopCtx, func() {}
	default:
	}
	return context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
}

// recordExit notes how a worker ended and, when it failed at boot, counts it.
func (s *Supervisor) recordExit(sl *slot, e Exit, reason, detail string, w *worker) {
	s.count(reason)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.lastExit, sl.lastReason = &e, reason
	if reason != "boot failure" && reason != "not ready in time" && reason != "start failed" {
		sl.bootFailures = 0
		if detail != "" {
			sl.lastReason = detail
		}
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

// sleep waits d before a restart. It reports false when the supervisor
// stops or the slot is removed meanwhile. A replacement asked for meanwhile
// is answered at once: the next start runs the new code anyway.
func (s *Supervisor) sleep(sl *slot, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case req := <-sl.replace:
			req.done <- nil
		case <-sl.remove:
			return false
		case <-s.stopping:
			return false
		}
	}
}
