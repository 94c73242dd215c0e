package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
)

// effects is what a slot's machine does to the world: processes, the
// Router, timers and the supervisor's counters. The slot's loop gives the
// machine the supervisor's effects; tests give it a recording fake. Each
// method returns at once; what it starts reports back as events.
type effects interface {
	spawn() (*worker, error)                        // start a process; its exit and readiness come back as events
	route(w *worker)                                // make a ready worker take traffic
	drain(w *worker) <-chan struct{}                // take a worker out of rotation
	halt(w *worker, how haltKind)                   // stop a worker in the background
	killGroup(w *worker)                            // SIGKILL the worker's process group
	cleanup(w *worker)                              // remove what a gone worker leaves behind
	memory(w *worker) (uint64, MemoryMeasure, bool) // measure a worker's memory
	guard() Guard                                   // the memory guard in force
	after(d time.Duration)                          // report evBackoffOver after d
	probation(w *worker, d time.Duration)           // report evProbationOver about w after d, unless it is gone
	queueRecycle(r recycle) bool                    // hand a recycling to the replacer
	count(reason EndReason)                         // count a worker's end
	firstOutcome()                                  // the first worker is ready or failed
	readyElsewhere() bool                           // some slot's worker serves
	giveUp(err *CrashLoopError)                     // end Run: the app keeps failing at start-up
	diagnose(w *worker, e Exit)                     // log why a worker died
	stopping() bool                                 // the supervisor stops
}

// haltKind is how a worker is stopped.
type haltKind int

const (
	haltStop    haltKind = iota // the supervisor stops: drain, stop signal, SIGKILL at the stop's deadline
	haltRemove                  // the slot is scaled away: the same within one shutdown timeout
	haltRecycle                 // stop-first replacement: the same, hurried by a stop
	haltRetire                  // replaced: drain up to the shutdown timeout, then HurryGrace
	haltEject                   // ejected: stop signal now, SIGKILL after EjectGrace
)

// life is one worker's time in a slot, as the slot's machine keeps it.
type life struct {
	w           *worker
	end         EndReason       // why the slot ended it, when it did
	notReady    string          // what a worker that was not ready did wrong, when known
	refused     bool            // it cannot run as started: retrying cannot help
	ejected     bool            // end is an ejection's reason: its exit restarts the slot
	killed      string          // why the memory guard killed it
	shortage    error           // its readiness could not be checked
	recycling   bool            // a recycling is queued
	mem         uint64          // its group's memory, 0 until measured
	measure     MemoryMeasure   // how mem was measured
	healthFails int             // consecutive failed health checks
	outUntil    time.Time       // the proxy routes nothing to it until then
	readySince  time.Time       // when it became ready; zero unless it serves
	readyAt     time.Time       // when it became ready; zero if it never did, kept when it stops serving
	routed      bool            // the Router sends it requests
	hold        time.Time       // in a memory loop: its recycling waits until then
	loopServed  time.Duration   // in a memory loop: how long it had served when it was first recycled
	req         *replaceRequest // answered when it is gone (a replaced worker)
}

// record is what a slot remembers of the workers it ran.
type record struct {
	restarts     int
	replaced     int
	bootFailures int
	lastExit     *Exit
	lastReason   string
	lastStop     *StopRecord // how a stop ended the last worker; nil when none did
	lastTail     []string
}

// machine is one slot's state machine. Only the slot's loop calls it; its
// handle method is the one transition function of the package doc's table.
type machine struct {
	slot int
	cfg  *Config
	fx   effects
	log  hclog.Logger

	phase    phase
	cur      *life            // the worker the phase is about
	next     *life            // the replacement starting beside cur (replacing)
	retiring map[uint64]*life // replaced or ejected workers not yet gone
	req      *replaceRequest  // answered when the replacement under way ends
	deferred *replaceRequest  // arrived while starting: carried out once ready
	removed  bool
	backoff  time.Duration
	memLoops int // memory recycles in a row of workers soon after they became ready
	rec      record
	publish  func(*machine) // shows the state before the Router learns of a ready worker; may be nil
}

func newMachine(slot int, cfg *Config, fx effects, log hclog.Logger) *machine {
	return &machine{slot: slot, cfg: cfg, fx: fx, log: log, retiring: map[uint64]*life{}, backoff: cfg.BackoffMin}
}

// finished reports whether the slot has ended and every worker it ran is gone.
func (m *machine) finished() bool { return m.phase == phaseStopped && len(m.retiring) == 0 }

// aboutWorker reports whether events of kind k name a worker by key.
func aboutWorker(k eventKind) bool {
	switch k {
	case evReady, evNotReady, evShortage, evExit, evEject, evKill, evRecycle, evProbationOver:
		return true
	}
	return false
}

// lifeOf returns the slot's current or starting worker with key, if any.
func (m *machine) lifeOf(key uint64) *life {
	switch {
	case key == 0:
		return nil
	case m.cur != nil && m.cur.w.key == key:
		return m.cur
	case m.next != nil && m.next.w.key == key:
		return m.next
	}
	return nil
}

// handle moves the slot on one event. It is the transition function of the
// table in the package doc: an event about a worker that is no longer the
// slot's is ignored, except the exit of a worker still retiring.
func (m *machine) handle(ev event) {
	switch ev.kind {
	case evSample, evHealth, evOutOfRotation:
		m.note(ev)
		return
	case evRemove:
		if m.removed {
			return
		}
		m.removed = true
	}
	if l := m.retiring[ev.key]; l != nil && ev.key != 0 {
		if ev.kind == evExit {
			m.retired(l, ev.exit)
		}
		return
	}
	l := m.lifeOf(ev.key)
	switch {
	case aboutWorker(ev.kind) && l == nil:
		return
	case l == nil:
		l = m.cur // events about the slot concern its current worker
	}
	if ev.kind == evReplace && ev.req.key != 0 && (m.cur == nil || ev.req.key != m.cur.w.key) {
		m.answer(ev.req, nil) // the worker to recycle is gone already
		return
	}
	switch m.phase {
	case phaseStarting:
		m.inStarting(ev, l)
	case phaseReady:
		m.inReady(ev, l)
	case phaseReplacing:
		m.inReplacing(ev, l)
	case phaseProbation:
		m.inProbation(ev, l)
	case phaseEjecting, phaseRecycling, phaseStopping:
		m.inDraining(ev, l)
	case phaseBackoff:
		m.inBackoff(ev)
	case phaseStopped:
		if ev.kind == evReplace {
			m.answer(ev.req, m.stopErr())
		}
	}
}

// note records a measurement of the slot's current worker.
func (m *machine) note(ev event) {
	if m.cur == nil || m.cur.w.key != ev.key {
		return
	}
	switch ev.kind {
	case evSample:
		m.cur.mem, m.cur.measure = ev.mem, ev.measure
	case evHealth:
		m.cur.healthFails = ev.n
	case evOutOfRotation:
		m.cur.outUntil = ev.until
	}
}

func (m *machine) inStarting(ev event, l *life) {
	switch ev.kind {
	case evReady:
		if l.end == "" && l.shortage == nil {
			m.serve(l)
		}
	case evNotReady:
		l.end = EndNotReady
		if ev.err != nil {
			var own *ownListenerError
			l.notReady, l.refused = ev.err.Error(), errors.As(ev.err, &own)
			l.w.log.Error("worker is not ready: "+l.notReady, "ready_timeout", m.cfg.ReadyTimeout)
		} else {
			l.w.log.Error("worker did not listen on its port in time; is the app listening on process.env.PORT?",
				"addr", l.w.addr(), "ready_timeout", m.cfg.ReadyTimeout)
		}
		m.fx.killGroup(l.w)
	case evShortage:
		l.shortage = ev.err
		l.w.log.Warn("cannot check whether the worker listens: percore is out of file descriptors or memory; "+
			"restarting it with backoff, not counted as a failed start", "error", ev.err)
		m.fx.killGroup(l.w)
	case evKill:
		m.kill(l, ev.detail)
	case evExit:
		m.startFailed(l, ev.exit)
	case evStartFailed:
		m.spawnFailed(ev.err)
	case evReplace:
		if m.deferred != nil {
			m.answer(m.deferred, nil)
		}
		m.deferred = ev.req
	case evRemove, evStop:
		m.stopAll(ev.kind)
	}
}

func (m *machine) inReady(ev event, l *life) {
	switch ev.kind {
	case evExit:
		if stable, failed := m.died(l, ev.exit); failed {
			m.backoffOrGiveUp(ev.exit, false, "")
		} else {
			m.toBackoff(stable)
		}
	case evEject:
		m.eject(l, ev.reason)
		m.phase = phaseEjecting
	case evKill:
		m.kill(l, ev.detail)
		m.phase = phaseEjecting
	case evRecycle:
		m.recycle(l, recycle{key: l.w.key, reason: ev.reason, detail: ev.detail}, ev.early)
	case evReplace:
		m.replace(l, m.inLoop(l, ev.req))
	case evRemove, evStop:
		m.stopAll(ev.kind)
	}
}

func (m *machine) inReplacing(ev event, l *life) {
	switch {
	case ev.kind == evReplace:
		if ev.req.stopFirst {
			m.retireEarly(m.inLoop(m.cur, ev.req))
		}
		m.answer(ev.req, nil) // the replacement under way runs the current code
	case ev.kind == evRemove || ev.kind == evStop:
		m.stopAll(ev.kind)
	case l == m.next:
		switch ev.kind {
		case evReady:
			m.startProbation()
		case evNotReady, evShortage:
			m.inStarting(ev, l)
		case evKill:
			m.kill(l, ev.detail)
		case evExit:
			m.replacementFailed(l, ev.exit)
		}
	default: // the serving worker
		switch ev.kind {
		case evExit:
			m.died(l, ev.exit)
			m.rec.restarts++
			m.cur, m.next, m.phase = m.next, nil, phaseStarting
		case evEject:
			m.eject(l, ev.reason)
			m.handOver(l)
		case evKill:
			m.kill(l, ev.detail)
			m.handOver(l)
		}
	}
}

// inProbation handles the phase in which the old worker and its ready
// replacement both serve, until the replacement has served for the
// probation or dies.
func (m *machine) inProbation(ev event, l *life) {
	switch {
	case ev.kind == evReplace:
		m.answer(ev.req, nil) // the replacement on probation runs the current code
	case ev.kind == evRemove || ev.kind == evStop:
		m.stopAll(ev.kind)
	case l == m.next:
		switch ev.kind {
		case evProbationOver:
			m.takeOver()
		case evKill:
			m.kill(l, ev.detail)
		case evExit:
			m.probationFailed(l, ev.exit)
		}
	default: // the old worker
		switch ev.kind {
		case evExit:
			m.died(l, ev.exit)
			m.rec.restarts++
			m.promote()
		case evEject:
			m.eject(l, ev.reason)
			m.retiring[l.w.key] = l
			m.promote()
		case evKill:
			m.kill(l, ev.detail)
			m.retiring[l.w.key] = l
			m.promote()
		}
	}
}

// inDraining handles the phases in which cur is out of rotation and stops.
func (m *machine) inDraining(ev event, l *life) {
	switch ev.kind {
	case evExit:
		switch m.phase {
		case phaseEjecting:
			stable, _ := m.died(l, ev.exit) // an ejection is never a failed start
			m.toBackoff(stable)
		case phaseRecycling:
			m.recycled(l, ev.exit)
		default:
			m.stopped(l, ev.exit)
		}
	case evKill:
		m.kill(l, ev.detail)
	case evReplace:
		if m.phase == phaseStopping {
			m.answer(ev.req, m.stopErr())
		} else {
			m.answer(ev.req, nil) // a worker with the current code starts next
		}
	case evRemove, evStop:
		if m.phase != phaseStopping {
			m.stopAll(ev.kind)
		}
	}
}

func (m *machine) inBackoff(ev event) {
	switch ev.kind {
	case evBackoffOver:
		m.backoff = min(m.backoff*2, m.cfg.BackoffMax)
		m.rec.restarts++
		m.start()
	case evReplace:
		m.answer(ev.req, nil) // the next start runs the new code anyway
	case evRemove, evStop:
		m.toStopped()
	}
}

// recycle queues the recycling r of the serving worker l with the
// replacer, unless one is queued already or a memory loop makes it wait.
// early says the memory guard recycles it for its growth, before its
// budget.
func (m *machine) recycle(l *life, r recycle, early bool) {
	if l.recycling {
		return
	}
	if r.reason == EndMaxMemory {
		var now bool
		if r, now = m.memoryRecycle(l, r, early); !now {
			return
		}
	}
	l.recycling = true
	l.w.log.Info("recycling worker", "reason", r.shown())
	if !m.fx.queueRecycle(r) {
		l.recycling = false
	}
}

// memoryRecycle decides when the serving worker l, which the memory guard
// recycles (early for its growth, or over its budget), is recycled. A
// worker recycled within Guard.Loop of becoming ready, when the slot's
// previous worker was too, is in a memory loop: each replacement would be
// recycled as soon, so it waits the slot's backoff, which doubles as after
// a crash, unless it keeps growing: recycled early for its growth, or
// grown half-way to the hard limit (Guard.hurry). It returns the
// recycling, and whether it is due now.
func (m *machine) memoryRecycle(l *life, r recycle, early bool) (recycle, bool) {
	g := m.fx.guard()
	now := time.Now()
	if l.hold.IsZero() {
		served := now.Sub(l.readyAt)
		if served >= g.Loop {
			m.memLoops, m.backoff = 0, m.cfg.BackoffMin
			return r, true
		}
		if m.memLoops++; m.memLoops < 2 {
			return r, true
		}
		l.hold, l.loopServed = now.Add(m.backoff), served
		m.warnLoop(l, g, served)
		m.backoff = min(m.backoff*2, m.cfg.BackoffMax)
	}
	r.reason, r.detail = EndMemoryLoop, loopReason(r.shown(), l.loopServed)
	return r, early || !now.Before(l.hold) || l.mem > g.hurry()
}

// inLoop returns req, counted as the end of a memory loop when it is the
// memory guard's and the serving worker l is in one: a recycle that does
// not wait for the backoff (the guard stops it before its replacement is
// ready, or the cgroup check recycles it) still ends the loop's worker.
func (m *machine) inLoop(l *life, req *replaceRequest) *replaceRequest {
	if req.reason == EndMaxMemory && !l.hold.IsZero() {
		req.reason = EndMemoryLoop
	}
	return req
}

// warnLoop says that the serving worker l is in a memory loop, with the
// figures and what to do about it.
func (m *machine) warnLoop(l *life, g Guard, served time.Duration) {
	v, budget := figures(l.mem, g.Budget)
	l.w.log.Warn("memory loop: the memory guard recycles the worker "+served.Round(10*time.Millisecond).String()+
		" after it became ready, as it did the worker before it; every replacement would be, so its recycling waits "+
		"a backoff that doubles up to "+m.cfg.BackoffMax.String()+", at once if it keeps growing",
		measureName(l.measure), v, "budget", budget, "served", served.Round(10*time.Millisecond), "backoff", m.backoff,
		"in_a_row", m.memLoops,
		"hint", "the app needs more memory than its budget: raise --max-memory, run fewer --workers, or give percore more memory")
}

// start starts a worker in the slot.
func (m *machine) start() {
	m.phase = phaseStarting
	w, err := m.fx.spawn()
	if err != nil {
		m.handle(event{kind: evStartFailed, err: err})
		return
	}
	m.cur = &life{w: w}
	w.log.Info("worker starting", "addr", w.addr())
}

// serve makes the starting worker l take traffic.
func (m *machine) serve(l *life) {
	m.phase = phaseReady
	m.route(l)
	if m.req != nil {
		m.answer(m.req, nil)
		m.req = nil
	}
	if d := m.deferred; d != nil {
		m.deferred = nil
		m.replace(l, d)
	}
}

// route routes a ready worker and measures it at once, so that /status has
// its memory from its first ready moment on.
func (m *machine) route(l *life) {
	if mem, measure, ok := m.fx.memory(l.w); ok {
		l.mem, l.measure = mem, measure
	}
	l.readySince, l.routed = time.Now(), true
	l.readyAt = l.readySince
	m.show() // whoever sees the worker routed sees it ready, with its memory
	m.fx.route(l.w)
	m.fx.firstOutcome()
	l.w.log.Info("worker ready", "addr", l.w.addr(), "startup", time.Since(l.w.started).Round(time.Millisecond))
}

// unroute takes a worker out of the Router. The slot shows it at once, so
// that readiness never counts a worker the Router has let go.
func (m *machine) unroute(l *life) <-chan struct{} {
	if l.routed {
		l.routed = false
		m.show()
	}
	return m.fx.drain(l.w)
}

// show publishes the slot's state now, before a change the Router sees.
func (m *machine) show() {
	if m.publish != nil {
		m.publish(m)
	}
}

// replace carries out a replacement of the serving worker l.
func (m *machine) replace(l *life, req *replaceRequest) {
	if req.stopFirst {
		l.w.log.Info("replacing worker: stopping it first, there is no memory for a replacement beside it",
			"reason", req.shown())
		m.req, m.phase, l.readySince, l.routed = req, phaseRecycling, time.Time{}, false
		m.show()
		m.fx.halt(l.w, haltRecycle)
		return
	}
	l.w.log.Info("replacing worker", "reason", req.shown())
	w, err := m.fx.spawn()
	if err != nil {
		if outOfResources(err) {
			err = &shortageError{err: err}
		} else {
			err = &startError{exit: Exit{Code: 127}, reason: EndStartFailed, detail: err.Error()}
		}
		l.w.log.Error("replacement failed; the old worker keeps serving", "reason", req.reason, "error", err)
		m.answer(req, fmt.Errorf("worker %d: replacement %w", m.slot, err))
		return
	}
	m.req, m.next, m.phase = req, &life{w: w}, phaseReplacing
	w.log.Info("worker starting", "addr", w.addr())
}

// startProbation routes the ready replacement beside the old worker, which
// keeps serving until the replacement has served for the probation: new
// code that dies soon after it listens then fails the replacement while
// the old worker still serves. Without a probation, the replacement takes
// over at once.
func (m *machine) startProbation() {
	nw := m.next
	m.phase = phaseProbation
	m.route(nw)
	if d := m.cfg.Probation; d > 0 && m.req != nil && m.req.probation {
		nw.w.log.Info("replacement on probation: it serves beside the old worker, which retires once the probation is over",
			"probation", d)
		m.fx.probation(nw.w, d)
		return
	}
	m.takeOver()
}

// takeOver makes the routed replacement the slot's worker; the old worker
// drains and stops.
func (m *machine) takeOver() {
	old, nw := m.cur, m.next
	m.cur, m.next, m.phase = nw, nil, phaseReady
	if m.req != nil {
		m.countReplacement(m.req.reason)
	}
	old.req, old.end, old.readySince, old.routed = m.req, EndReplaced, time.Time{}, false
	m.req = nil
	m.retiring[old.w.key] = old
	m.show() // whoever sees the old worker draining sees the replacement serve
	if m.cfg.Probation > 0 && old.req != nil && old.req.probation {
		nw.w.log.Info("replacement passed its probation; the old worker retires", "probation", m.cfg.Probation)
	}
	m.fx.halt(old.w, haltRetire)
}

// promote makes the replacement on probation the slot's worker when the old
// worker went first (it exited, or was ejected or killed): the probation
// ends early and the replacement is answered.
func (m *machine) promote() {
	m.cur, m.next, m.phase = m.next, nil, phaseReady
	m.show()
	if m.req != nil {
		m.answer(m.req, nil)
		m.req = nil
	}
}

// retireEarly stops the serving worker before its replacement is ready,
// as req asks (the memory guard, when it would reach its hard limit
// first): it drains and stops as a replaced worker, and the starting
// replacement becomes the slot's worker.
func (m *machine) retireEarly(req *replaceRequest) {
	old := m.cur
	old.w.log.Info("replacing worker: stopping it before its replacement is ready", "reason", req.shown())
	m.unroute(old)
	old.req, old.end, old.readySince = req, EndReplaced, time.Time{}
	m.countReplacement(req.reason)
	m.retiring[old.w.key] = old
	m.fx.halt(old.w, haltRetire)
	m.cur, m.next, m.phase = m.next, nil, phaseStarting
}

// handOver makes the starting replacement the slot's worker after the
// serving worker old was ejected or killed; old ends on its own.
func (m *machine) handOver(old *life) {
	old.readySince = time.Time{}
	m.retiring[old.w.key] = old
	m.cur, m.next, m.phase = m.next, nil, phaseStarting
}

func (m *machine) eject(l *life, reason EndReason) {
	l.w.log.Warn("ejecting worker: out of rotation and restarting", "reason", reason)
	l.end, l.ejected, l.readySince = reason, true, time.Time{}
	m.unroute(l)
	m.fx.halt(l.w, haltEject)
}

// kill kills a worker above the memory guard's hard limit at once.
func (m *machine) kill(l *life, reason string) {
	if l.killed != "" {
		return
	}
	l.killed, l.readySince = reason, time.Time{}
	l.w.log.Error("killing worker", "reason", reason)
	m.unroute(l)
	m.fx.killGroup(l.w)
}

// stopAll stops the slot's workers for good.
func (m *machine) stopAll(kind eventKind) {
	how := haltStop
	if kind == evRemove {
		how = haltRemove
	}
	if m.next != nil {
		m.next.end = EndStopped
		m.retiring[m.next.w.key] = m.next
		m.fx.halt(m.next.w, how)
		m.next = nil
	}
	if m.phase != phaseRecycling && m.req != nil {
		m.answer(m.req, m.stopErr())
		m.req = nil
	}
	if m.cur == nil {
		m.toStopped()
		return
	}
	if m.phase != phaseEjecting && m.phase != phaseRecycling {
		m.cur.w.log.Info("worker draining")
	}
	m.cur.readySince, m.cur.routed = time.Time{}, false
	m.phase = phaseStopping
	m.show()
	m.fx.halt(m.cur.w, how)
}

func (m *machine) toStopped() {
	m.phase, m.cur = phaseStopped, nil
	for _, r := range []**replaceRequest{&m.req, &m.deferred} {
		if *r != nil {
			m.answer(*r, m.stopErr())
			*r = nil
		}
	}
}

func (m *machine) toBackoff(stable bool) {
	if stable {
		m.backoff = m.cfg.BackoffMin
	}
	m.phase, m.cur = phaseBackoff, nil
	if m.deferred != nil {
		m.answer(m.deferred, nil) // the next start runs the new code anyway
		m.deferred = nil
	}
	m.log.Info("worker restarting after backoff", "worker", m.slot, "backoff", m.backoff)
	m.fx.after(m.backoff)
}

// stopErr is the answer to a replacement cut short by the slot's end.
func (m *machine) stopErr() error {
	if m.removed && !m.fx.stopping() {
		return nil
	}
	return errStopping
}

func (m *machine) answer(req *replaceRequest, err error) {
	if req.done != nil {
		req.done <- err
	}
}
