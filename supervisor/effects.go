package supervisor

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// slotEffects are a slot machine's effects on real processes, the Router
// and the supervisor. Every goroutine it starts is counted in s.helpers and
// ends when its worker is gone or the supervisor stops.
type slotEffects struct {
	s  *Supervisor
	sl *slot
}

func (f *slotEffects) spawn() (*worker, error) {
	w, err := f.s.spawn(f.sl.id)
	if err != nil {
		return nil, err
	}
	f.s.helpers.Add(2)
	go f.s.watchExit(f.sl, w)
	go f.s.watchReady(f.sl, w)
	return w, nil
}

func (f *slotEffects) route(w *worker) { f.s.cfg.Router.Add(w.key, f.sl.id, w.addr()) }

func (f *slotEffects) drain(w *worker) <-chan struct{} { return f.s.cfg.Router.Drain(w.key) }

func (f *slotEffects) halt(w *worker, how haltKind) {
	f.s.helpers.Add(1)
	go f.s.halt(w, how)
}

func (f *slotEffects) killGroup(w *worker) { f.s.killGroup(w) }

// cleanup kills what is left of a gone worker's process group at once, as
// ever, and ends the processes it started outside the group in the
// background (endLeftovers).
func (f *slotEffects) cleanup(w *worker) {
	if err := w.signal(syscall.SIGKILL); err != nil {
		w.log.Warn("kill process group", "error", err)
	}
	w.forget()
	f.s.helpers.Add(1)
	go f.s.endLeftovers(w)
}

// memory reads the PSS of a worker's tree, and remembers its processes.
func (f *slotEffects) memory(w *worker) (uint64, MemoryMeasure, bool) {
	u, ok := f.s.fams.sample(w.fam, true)
	return u.pss, u.measure, ok
}

// guard is the memory guard in force.
func (f *slotEffects) guard() Guard { return f.s.guard() }

func (f *slotEffects) after(d time.Duration) {
	f.s.helpers.Add(1)
	go f.s.backoffTimer(f.sl, d)
}

func (f *slotEffects) probation(w *worker, d time.Duration) {
	f.s.helpers.Add(1)
	go f.s.probationTimer(f.sl, w, d)
}

func (f *slotEffects) queueRecycle(r recycle) bool {
	select {
	case f.s.recycles <- r:
		return true
	default:
		return false
	}
}

func (f *slotEffects) count(reason EndReason)     { f.s.count(reason) }
func (f *slotEffects) firstOutcome()              { f.s.firstOutcome() }
func (f *slotEffects) readyElsewhere() bool       { return f.s.readyElsewhere(f.sl) }
func (f *slotEffects) diagnose(w *worker, e Exit) { f.s.diagnose(w, e) }

func (f *slotEffects) giveUp(err *CrashLoopError) {
	select {
	case f.s.fatal <- err:
	default:
	}
}

func (f *slotEffects) stopping() bool {
	select {
	case <-f.s.stopping:
		return true
	default:
		return false
	}
}

// watchExit is the one reader of a worker's exit: it marks the worker gone,
// tells whether the kernel's OOM killer ended it, and tells its slot.
func (s *Supervisor) watchExit(sl *slot, w *worker) {
	defer s.helpers.Done()
	e := <-w.exit
	if e.Signal == syscall.SIGKILL && !w.sigkilled.Load() && s.ooms.take(time.Now()) {
		e.OOMKilled = true
		w.log.Error("worker was killed by the kernel OOM killer (memory cgroup limit reached)",
			"hint", "lower --heap, --workers or --max-memory, or give the container more memory")
	}
	close(w.gone)
	sl.mail.post(event{kind: evExit, key: w.key, exit: e})
}

// watchReady tells the slot when its starting worker listens, or why it
// will not.
func (s *Supervisor) watchReady(sl *slot, w *worker) {
	defer s.helpers.Done()
	err := s.awaitReady(w)
	var short *shortageError
	var own *ownListenerError
	switch {
	case err == nil:
		sl.mail.post(event{kind: evReady, key: w.key})
	case errors.As(err, &short):
		sl.mail.post(event{kind: evShortage, key: w.key, err: short.err})
	case errors.Is(err, errNotReady):
		sl.mail.post(event{kind: evNotReady, key: w.key})
	case errors.Is(err, errNoSocket), errors.As(err, &own):
		sl.mail.post(event{kind: evNotReady, key: w.key, err: err})
	}
}

// backoffTimer reports the end of a restart delay, unless the supervisor
// stops or the slot goes first.
func (s *Supervisor) backoffTimer(sl *slot, d time.Duration) {
	defer s.helpers.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		sl.mail.post(event{kind: evBackoffOver})
	case <-s.stopping:
	case <-sl.remove:
	}
}

// probationTimer reports the end of a replacement's probation, unless the
// replacement is gone first, the supervisor stops or the slot goes.
func (s *Supervisor) probationTimer(sl *slot, w *worker, d time.Duration) {
	defer s.helpers.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		sl.mail.post(event{kind: evProbationOver, key: w.key})
	case <-w.gone:
	case <-s.stopping:
	case <-sl.remove:
	}
}

// halt stops a worker as how says. The worker's exit reaches its slot
// through watchExit; this only signals and kills.
func (s *Supervisor) halt(w *worker, how haltKind) {
	defer s.helpers.Done()
	switch how {
	case haltStop:
		// Routed until idle: requests still arriving during a stop, or
		// queued, are served. A worker removed or recycled while percore
		// runs drains at once instead, so that traffic moves elsewhere.
		s.stop(s.stopCtx, w, s.cfg.Router.Idle(w.key))
	case haltRemove:
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.stop(ctx, w, nil)
	case haltRecycle:
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		go cancelOnStop(ctx, cancel, s.stopping, nil)
		s.stop(ctx, w, nil)
	case haltRetire:
		s.retire(w)
	case haltEject:
		s.ejectStop(w)
	}
}

// retire drains a replaced worker: its in-flight requests and open tunnels
// may finish until the shutdown timeout. It then gets the stop signal and
// HurryGrace before SIGKILL. When percore stops meanwhile, the stop's
// budget takes over.
func (s *Supervisor) retire(w *worker) {
	w.log.Info("worker draining")
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-s.cfg.Router.Drain(w.key):
	case <-t.C:
		w.log.Warn("drain deadline reached with work in flight")
	case <-w.gone:
	case <-s.stopping:
		s.stop(s.stopCtx, w, nil)
		return
	}
	grace, cancel := context.WithTimeout(context.Background(), HurryGrace)
	defer cancel()
	s.stop(grace, w, nil)
}

// ejectStop sends an ejected worker the stop signal and SIGKILLs its group
// and its other processes if it has not exited after EjectGrace. A stop
// meanwhile takes over.
func (s *Supervisor) ejectStop(w *worker) {
	s.signalFamily(w)
	t := time.NewTimer(EjectGrace)
	defer t.Stop()
	select {
	case <-t.C:
		s.killGroup(w)
	case <-w.gone:
	case <-s.stopping:
	}
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
