package supervisor

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// slot is one of the N places a worker runs in. A slot keeps one worker
// alive: it starts it, waits until it is ready, routes to it, replaces it on
// request (reload, recycling) with the new worker ready before the old one
// drains, and restarts it with backoff when it exits. Its loop owns it: every
// change arrives as an event and goes through its machine.
type slot struct {
	id     int
	mail   *mailbox
	remove chan struct{} // closed when the slot is scaled away
	rmOnce sync.Once
	done   chan struct{} // closed when the slot's loop has ended

	mu   sync.Mutex // protects view
	view slotView
}

// slotView is what the slot's loop publishes after each event.
type slotView struct {
	status   WorkerStatus
	phase    phase
	outUntil time.Time
	routed   bool
}

// replaceRequest asks a slot to replace its worker. done receives nil once
// the old worker has stopped, or why the replacement failed (the old worker
// then keeps serving).
type replaceRequest struct {
	key       uint64    // the worker to replace; 0: whichever serves
	reason    EndReason // what is counted: EndReload, EndMaxMemory, EndMemoryLoop, EndMaxRequests
	detail    string    // what /status shows, when more than reason
	stopFirst bool      // stop the old worker before the replacement starts
	// probation says the replacement runs new code: it serves beside the
	// old worker for Config.Probation before the old one retires (a reload)
	probation bool
	done      chan error
}

// shown is the reason /status gives for the replaced worker's end.
func (r *replaceRequest) shown() string {
	if r.detail != "" {
		return r.detail
	}
	return r.reason.String()
}

func newSlot(id int) *slot {
	sl := &slot{id: id, mail: newMailbox(), remove: make(chan struct{}), done: make(chan struct{})}
	sl.view.status = WorkerStatus{ID: id, State: StateStarting}
	return sl
}

// WorkerStatus is a snapshot of one slot.
type WorkerStatus struct {
	ID          int           // the slot, as in PERCORE_WORKER_ID
	PID         int           // 0 while no process runs
	Port        int           // the worker's loopback port
	State       State         // where the worker is in its life
	NotRouted   NotRouted     // why the worker takes no new requests; "" when it does
	Restarts    int           // unplanned restarts: crashes, failed starts, ejections and memory loops
	Replaced    int           // planned replacements: reloads and recycling
	LastExit    *Exit         // how the previous process ended, nil if none did
	LastReason  string        // why it ended: one of EndReasons, alone or with a colon and its detail, or the detail alone
	LastStop    *StopRecord   // how percore's stop of the previous process went; nil when no stop ended it
	Started     time.Time     // when the current process started
	ReadySince  time.Time     // when it became ready; zero unless ready
	RSS         uint64        // memory of the worker's process group in bytes, as Measure says (0 until measured)
	Measure     MemoryMeasure // how RSS was measured: the sum of the processes' PSS, or of their RSS
	HealthFails int           // consecutive failed health checks of the serving worker
	Key         uint64        // the serving worker's router key (0 if none)
	Addr        string        // the serving worker's loopback address ("" if none)
	Ping        string        // the serving worker's ping address (EnvPing; "" if none)
}

// publish copies the machine's state into the slot's view.
func (sl *slot) publish(m *machine) {
	ws := WorkerStatus{ID: sl.id, State: m.phase.State(), Restarts: m.rec.restarts, Replaced: m.rec.replaced,
		LastExit: m.rec.lastExit, LastReason: m.rec.lastReason, LastStop: m.rec.lastStop}
	v := slotView{phase: m.phase}
	if l := m.cur; l != nil {
		ws.PID, ws.Port, ws.Started, ws.Key, ws.Addr = l.w.pid, l.w.port, l.w.started, l.w.key, l.w.addr()
		ws.Ping = l.w.pingAddr()
		ws.ReadySince, ws.RSS, ws.Measure, ws.HealthFails = l.readySince, l.mem, l.measure, l.healthFails
		v.outUntil, v.routed = l.outUntil, l.routed
	}
	v.status = ws
	sl.mu.Lock()
	sl.view = v
	sl.mu.Unlock()
}

// status returns the slot's last published status as of now.
func (sl *slot) status(now time.Time) WorkerStatus {
	sl.mu.Lock()
	v := sl.view
	sl.mu.Unlock()
	ws := v.status
	switch v.phase {
	case phaseReady, phaseReplacing, phaseProbation:
		switch {
		case !v.routed:
			ws.NotRouted = NotRoutedDraining // it exited; the slot records it
		case now.Before(v.outUntil):
			ws.NotRouted = NotRoutedEjected
		}
	case phaseStarting:
		ws.NotRouted = NotRoutedStarting
	case phaseEjecting:
		ws.NotRouted = NotRoutedEjected
	case phaseRecycling, phaseStopping:
		ws.NotRouted = NotRoutedDraining
	case phaseBackoff:
		ws.NotRouted = NotRoutedBackoff
	default:
		ws.NotRouted = NotRoutedStopped
	}
	return ws
}

func (sl *slot) retire() { sl.rmOnce.Do(func() { close(sl.remove) }) }

// runSlot is the life of one slot: its machine's events, until it has
// stopped and every worker it ran is gone.
func (s *Supervisor) runSlot(sl *slot) {
	defer s.slotsWG.Done()
	defer close(sl.done)
	m := newMachine(sl.id, &s.cfg, &slotEffects{s: s, sl: sl}, s.log)
	m.publish = sl.publish
	m.start()
	sl.publish(m)
	stopping, remove := s.stopping, sl.remove
	for !m.finished() {
		select {
		case <-sl.mail.ready:
			for _, ev := range sl.mail.take() {
				m.handle(ev)
			}
		case <-stopping:
			stopping = nil
			m.handle(event{kind: evStop})
		case <-remove:
			remove = nil
			m.handle(event{kind: evRemove})
		}
		sl.publish(m)
	}
	if remove == nil && stopping != nil {
		s.releaseSocket(sl.id)
	}
}

// releaseSocket closes the public socket of a slot scaled away, once its
// last worker is gone (direct mode): unless a slot added since took the
// same id, and with it the socket and its queue.
func (s *Supervisor) releaseSocket(id int) {
	if s.cfg.Sockets == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id >= len(s.slots) {
		s.cfg.Sockets.Release(id)
	}
}

// errStopping says a replacement was cut short by a stop.
var errStopping = errors.New("percore is stopping")

// startError says why a worker never became ready. Its text is percore's
// own words, shown on /status: never the worker's output, which may hold a
// secret and goes to the log only (the worker's tail, for whoever logs it).
type startError struct {
	w      *worker // nil when the process could not be started
	exit   Exit
	reason EndReason
	detail string // percore's words too
}

func (e *startError) Error() string {
	msg := e.reason.String() + " (" + e.exit.String() + ")"
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

// died records the end of a worker that served: a crash, or the exit of an
// ejected or killed worker. It reports whether the worker served long
// enough to forget earlier failures (stable), and whether its exit counts
// as a failed start: a crash within MinUptime of becoming ready, whatever
// its start-up took.
func (m *machine) died(l *life, e Exit) (stable, failed bool) {
	m.fx.cleanup(l.w)
	<-m.unroute(l)
	l.w.awaitOutput()
	served := time.Since(l.readyAt)
	l.w.log.Error("worker exited", "exit", e.String(), "uptime", time.Since(l.w.started).Round(time.Millisecond),
		"served", served.Round(time.Millisecond))
	m.fx.diagnose(l.w, e)
	failed = served < m.cfg.MinUptime
	reason, detail := EndCrash, ""
	if failed {
		reason = EndBootFailure
	}
	if l.ejected {
		reason, failed = l.end, false
	}
	if l.killed != "" {
		reason, detail, failed = EndMaxMemory, l.killed, false
	}
	if e.OOMKilled {
		reason, detail = EndOOMKill, ""
	}
	m.recordExit(e, reason, detail, l.w, failed)
	if failed {
		m.fx.firstOutcome()
	}
	return served >= m.cfg.StableAfter, failed
}

// startFailed records the exit of a worker that never became ready, and
// gives up on a crash loop.
func (m *machine) startFailed(l *life, e Exit) {
	m.fx.cleanup(l.w)
	l.w.awaitOutput()
	m.cur = nil
	switch {
	case l.shortage != nil:
		m.recordShortage(l.shortage)
		m.toBackoff(false)
		return
	case l.end == EndNotReady:
		m.failedStart(e, EndNotReady, l.notReady, l.w, l.refused)
	case m.refusedExit(e):
		l.w.log.Error("worker refused: percore's preload says why in its output", "exit", e.String())
		m.failedStart(e, EndBootFailure, "percore's preload refused it ("+e.String()+")", l.w, true)
	default:
		l.w.log.Error("worker exited before it was ready", "exit", e.String())
		m.failedStart(e, oomOr(e, EndBootFailure), l.killed, l.w, false)
	}
}

// refusedExit reports whether e is the preload's refusal of the app.
func (m *machine) refusedExit(e Exit) bool {
	return m.cfg.RefusedExitCode != 0 && e.Signal == 0 && e.Code == m.cfg.RefusedExitCode
}

// spawnFailed records a start that found no process to run.
func (m *machine) spawnFailed(err error) {
	if outOfResources(err) {
		m.log.Warn("cannot start a worker: percore is out of file descriptors or memory; "+
			"retrying with backoff, not counted as a failed start", "worker", m.slot, "error", err)
		m.recordShortage(err)
		m.toBackoff(false)
		return
	}
	m.log.Error("worker failed to start", "worker", m.slot, "error", err)
	m.failedStart(Exit{Code: 127}, EndStartFailed, err.Error(), nil, false)
}

// failedStart counts a failed start, and gives up when the slot keeps
// failing at boot, or the start was refused, while no worker serves.
func (m *machine) failedStart(e Exit, reason EndReason, detail string, w *worker, refused bool) {
	m.recordExit(e, reason, detail, w, true)
	m.fx.firstOutcome()
	if m.req != nil {
		err := &startError{w: w, exit: e, reason: reason, detail: detail}
		m.answer(m.req, fmt.Errorf("worker %d: replacement %w", m.slot, err))
		m.req = nil
	}
	m.backoffOrGiveUp(e, refused, detail)
}

// backoffOrGiveUp follows a failed start that ended with e: the slot gives
// up, and with it Run, when it has failed MaxBootFailures starts in a row,
// or the start was refused (detail says why), while no other slot serves;
// else it backs off.
func (m *machine) backoffOrGiveUp(e Exit, refused bool, detail string) {
	if (refused || m.rec.bootFailures >= m.cfg.MaxBootFailures) && !m.fx.readyElsewhere() {
		last := m.rec.lastReason + ", " + e.String()
		if refused {
			last = detail
		}
		m.fx.giveUp(&CrashLoopError{Slot: m.slot, Attempts: m.rec.bootFailures, Last: last, Output: m.rec.lastTail,
			Refused: refused})
		m.toStopped()
		return
	}
	m.toBackoff(false)
}

// replacementFailed records that a replacement ended before it was ready:
// the serving worker keeps serving.
func (m *machine) replacementFailed(l *life, e Exit) {
	m.fx.cleanup(l.w)
	l.w.awaitOutput()
	m.next, m.phase = nil, phaseReady
	if e.OOMKilled {
		m.countEnd(EndOOMKill)
	}
	var err error
	switch {
	case l.shortage != nil:
		err = &shortageError{err: l.shortage}
	case l.end == EndNotReady:
		err = &startError{w: l.w, exit: e, reason: EndNotReady, detail: l.notReady}
	default:
		l.w.log.Error("worker exited before it was ready", "exit", e.String())
		err = &startError{w: l.w, exit: e, reason: oomOr(e, EndBootFailure), detail: l.killed}
	}
	m.cur.w.log.Error("replacement failed; the old worker keeps serving", "reason", m.req.reason, "error", err)
	m.answer(m.req, fmt.Errorf("worker %d: replacement %w", m.slot, err))
	m.req = nil
}

// probationFailed records that a replacement on probation exited: it is
// taken out of rotation and the old worker, which never stopped serving,
// keeps serving. The error says in percore's words how long the replacement
// served; what it printed goes to the log with the failed reload.
func (m *machine) probationFailed(l *life, e Exit) {
	served := time.Since(l.readySince).Round(10 * time.Millisecond)
	m.fx.cleanup(l.w)
	<-m.unroute(l)
	l.w.awaitOutput()
	m.next, m.phase = nil, phaseReady
	detail := fmt.Sprintf("%s after it became ready, within its %s probation", served, m.cfg.Probation)
	if l.killed != "" {
		detail = l.killed
	}
	if e.OOMKilled {
		m.countEnd(EndOOMKill)
	}
	l.w.log.Error("replacement exited on probation", "exit", e.String(), "served", served)
	err := &startError{w: l.w, exit: e, reason: EndProbation, detail: detail}
	m.cur.w.log.Error("replacement failed on probation; the old worker keeps serving", "reason", m.req.reason, "error", err)
	m.answer(m.req, fmt.Errorf("worker %d: replacement %w", m.slot, err))
	m.req = nil
}

// recycled records the end of a worker stopped before its replacement
// starts, and starts the replacement.
func (m *machine) recycled(l *life, e Exit) {
	m.fx.cleanup(l.w)
	m.cur = nil
	req := m.req
	m.req = nil
	shown := req.shown()
	if l.killed != "" {
		shown = l.killed
	}
	if e.OOMKilled {
		shown = EndOOMKill.String()
	}
	m.countReplacement(req.reason)
	stop := m.stopEnd(l.w, e)
	m.rec.lastExit, m.rec.lastReason = &e, shown
	l.w.log.Info("worker stopped", append([]any{"exit", e.String(), "reason", shown}, stop.fields()...)...)
	m.countEnd(oomOr(e, req.reason))
	m.answer(req, nil)
	if m.fx.stopping() {
		m.toStopped()
		return
	}
	m.start()
}

// stopped records the end of a worker stopped for good.
func (m *machine) stopped(l *life, e Exit) {
	m.fx.cleanup(l.w)
	m.stoppedFor(l, e)
	m.toStopped()
}

// stopEnd returns how a stop of the worker that exited with e went, and
// keeps it as the slot's last stop.
func (m *machine) stopEnd(w *worker, e Exit) StopRecord {
	r := w.stopRecord().settle(e)
	m.rec.lastStop = nil
	if r.End != StopEndNone {
		m.rec.lastStop = &r
	}
	return r
}

// retired records the end of a worker that no longer is the slot's own: a
// replaced worker, an ejected one whose replacement was starting, or a
// replacement cut short by a stop.
func (m *machine) retired(l *life, e Exit) {
	delete(m.retiring, l.w.key)
	switch {
	case l.req != nil:
		m.fx.cleanup(l.w)
		stop := m.stopEnd(l.w, e)
		l.w.log.Info("worker stopped", append([]any{"exit", e.String(), "reason", l.req.shown()}, stop.fields()...)...)
		m.countEnd(oomOr(e, l.req.reason))
		m.rec.lastExit, m.rec.lastReason = &e, oomShown(e, l.req.shown())
		m.answer(l.req, nil)
	case l.ejected || l.killed != "":
		m.died(l, e) // never a failed start
		m.rec.restarts++
	default:
		m.fx.cleanup(l.w)
		m.stoppedFor(l, e)
	}
}

// stoppedFor records the end of a worker that was stopped for good. It is
// not counted, unless the kernel's OOM killer ended it first.
func (m *machine) stoppedFor(l *life, e Exit) {
	stop := m.stopEnd(l.w, e)
	l.w.log.Info("worker stopped", append([]any{"exit", e.String()}, stop.fields()...)...)
	m.rec.lastExit, m.rec.lastReason = &e, oomOr(e, EndStopped).String()
	if e.OOMKilled {
		m.countEnd(EndOOMKill)
	}
}

// oomOr is reason, or "oom kill" when the kernel's OOM killer ended the
// worker: every record and count of its end says so.
func oomOr(e Exit, reason EndReason) EndReason {
	if e.OOMKilled {
		return EndOOMKill
	}
	return reason
}

// oomShown is what /status shows of an end it would show as shown: the
// words of EndOOMKill when the kernel's OOM killer ended the worker.
func oomShown(e Exit, shown string) string {
	if e.OOMKilled {
		return EndOOMKill.String()
	}
	return shown
}

// recordExit notes how a worker ended and, when it failed at boot, counts it.
func (m *machine) recordExit(e Exit, reason EndReason, detail string, w *worker, failed bool) {
	m.countEnd(reason)
	m.rec.lastExit, m.rec.lastReason, m.rec.lastStop = &e, reason.String(), nil
	if !failed {
		m.rec.bootFailures = 0
		if detail != "" {
			m.rec.lastReason = detail
		}
		return
	}
	m.rec.bootFailures++
	if detail != "" {
		m.rec.lastReason = reason.String() + ": " + detail
	}
	if w != nil {
		w.tail.add([]byte("(" + e.String() + ")"))
		m.rec.lastTail = w.tail.Lines()
	}
}

// countEnd counts a worker's end for reason. An end that is not the memory
// guard's breaks a run of memory recycles.
func (m *machine) countEnd(reason EndReason) {
	m.fx.count(reason)
	if reason != EndMaxMemory && reason != EndMemoryLoop {
		m.memLoops = 0
	}
}

// countReplacement counts a replacement for reason: planned, or a restart
// when it ends a memory loop, which is a fault.
func (m *machine) countReplacement(reason EndReason) {
	if reason == EndMemoryLoop {
		m.rec.restarts++
		return
	}
	m.rec.replaced++
}
