package supervisor

import (
	"context"
	"errors"
	"syscall"
	"time"
)

// Bounds of HandlerShare.
const (
	MinHandlerShare = time.Second
	MaxHandlerShare = 10 * time.Second
)

// HandlerShare returns the part of a stop's budget kept back for the
// workers' own stop handlers: a worker that still has work in flight when
// only this much of the budget is left gets the stop signal then, so that
// every worker's handler runs before any SIGKILL. It is the last quarter of
// the budget, at least MinHandlerShare and at most MaxHandlerShare, and
// never more than the budget itself.
//
// The three quarters before it are the drain: requests finish with their
// answers, and an idle worker gets the stop signal at once, so only a
// worker busy that long meets the share. Its handler then closes the app's
// server, which waits for the requests still running, closes pools and
// files and flushes what the app buffers: a fraction of a second for most
// apps, so the drain, which serves clients, gets most of the budget. At
// least 1s, since a runtime on a loaded machine needs that long to run a
// handler and flush; at most 10s, since a handler that needs longer is
// waiting for requests, which the drain already waited for.
func HandlerShare(budget time.Duration) time.Duration {
	return min(max(budget/4, MinHandlerShare), MaxHandlerShare, budget)
}

// StopEnd is how a stop of a worker ended.
type StopEnd int

const (
	// StopEndNone: no stop ended the worker (yet).
	StopEndNone StopEnd = iota
	// StopEndDrained: the worker had nothing in flight, got the stop
	// signal and exited.
	StopEndDrained
	// StopEndBusy: the worker got the stop signal with work in flight (at
	// the signal deadline, in a fast stop, or in direct mode with
	// connections open) and exited before the kill deadline.
	StopEndBusy
	// StopEndKilled: the worker got the stop signal but still ran at the
	// kill deadline, and its process group was killed.
	StopEndKilled
)

// String says how the stop ended, as the log and /status write it.
func (e StopEnd) String() string {
	switch e {
	case StopEndNone:
		return "none"
	case StopEndDrained:
		return "drained, then signalled"
	case StopEndBusy:
		return "signalled while busy"
	case StopEndKilled:
		return "killed at the deadline"
	default:
		return "unknown"
	}
}

// What a StopRecord counts.
const (
	// CountedRequests: the Router's requests, streamed bodies and upgraded
	// connections (proxy mode).
	CountedRequests = "requests"
	// CountedConnections: the TCP connections the worker's process group
	// holds on its public socket (direct mode, where percore does not see
	// the requests).
	CountedConnections = "connections"
)

// StopRecord is what a stop did to a worker.
type StopRecord struct {
	End StopEnd
	// InFlight is the work the worker had when it got the stop signal, Cut
	// what it still had when it was killed; Counted says what they count
	// (CountedRequests or CountedConnections).
	InFlight int
	Cut      int
	Counted  string
}

// fields are the record's log fields: "stop" and its counts.
func (r StopRecord) fields() []any {
	if r.End == StopEndNone {
		return nil
	}
	return append([]any{"stop", r.End.String()}, r.counts()...)
}

// counts are the log fields of the record's counts: "requests_in_flight"
// when not zero, and "requests_cut" once killed (direct mode:
// "connections_open", "connections_cut").
func (r StopRecord) counts() []any {
	var f []any
	open, cut := "requests_in_flight", "requests_cut"
	if r.Counted == CountedConnections {
		open, cut = "connections_open", "connections_cut"
	}
	if r.InFlight > 0 {
		f = append(f, open, r.InFlight)
	}
	if r.End == StopEndKilled {
		f = append(f, cut, r.Cut)
	}
	return f
}

// settle adjusts the record to the worker's exit: a worker that exited by
// itself as it was being killed was not killed.
func (r StopRecord) settle(e Exit) StopRecord {
	if r.End == StopEndKilled && e.Signal != syscall.SIGKILL {
		r.End, r.Cut = StopEndBusy, 0
	}
	return r
}

// stopCue is what ended a wait of a stop.
type stopCue int

const (
	cueClosed stopCue = iota // the channel waited for closed
	cueGone                  // the worker exited
	cueSignal                // the signal deadline came
	cueCancel                // the stop's ctx ended: a fast stop, or the kill deadline
)

// stop ends a worker within ctx, whose deadline is the kill deadline:
//
//  1. With idle set (a stop of the supervisor), the worker stays routed
//     until idle closes, so that requests that still arrive, or wait in
//     the proxy's queue, are served rather than refused.
//  2. It is drained: out of rotation until its work in flight is done.
//  3. It gets the stop signal once drained, or at the signal deadline (the
//     kill deadline less HandlerShare of the budget) with its work still in
//     flight: every worker's handler runs before any SIGKILL.
//  4. What is left of its process group at the kill deadline is killed.
//
// A fast stop (ctx cancelled with cause ErrHurry) goes to the signal at
// once and kills HurryGrace later, or at the kill deadline if that comes
// first. A worker that exits meanwhile is left alone. How the stop ended
// goes to the worker's stop record, which its slot logs with the exit; the
// exit reaches the slot through watchExit.
func (s *Supervisor) stop(ctx context.Context, w *worker, idle <-chan struct{}) {
	c := newStopClock(ctx, HandlerShare(s.cfg.ShutdownTimeout))
	defer c.close()
	cue := cueClosed
	if idle != nil {
		cue = c.await(w, idle)
	}
	drained := s.cfg.Router.Drain(w.key) // also when gone: the Router forgets it
	if cue == cueClosed {
		cue = c.await(w, drained)
	}
	if cue == cueGone {
		return
	}
	s.signalStop(w, cue, c)
	if c.awaitExit(w) {
		return
	}
	s.killAtDeadline(w)
}

// signalStop sends the worker the stop signal and records whether it was
// busy.
func (s *Supervisor) signalStop(w *worker, cue stopCue, c *stopClock) {
	rec := StopRecord{End: StopEndDrained, Counted: CountedRequests}
	if s.cfg.Sockets != nil {
		rec.Counted = CountedConnections
	}
	if cue != cueClosed || s.cfg.Sockets != nil { // a drained worker has no requests left
		rec.InFlight = s.workInFlight(w)
	}
	if rec.InFlight > 0 {
		rec.End = StopEndBusy
	}
	w.setStopRecord(rec) // before the signal: the exit it causes reads it
	args := append([]any{"signal", s.cfg.StopSignal.String()}, rec.counts()...)
	if left, ok := c.left(); ok {
		args = append(args, "kill_in", left.Round(time.Millisecond))
	}
	switch {
	case cue == cueCancel && errors.Is(context.Cause(c.ctx), context.DeadlineExceeded):
		w.log.Warn("worker still running at the deadline: sending the stop signal before SIGKILL", args...)
	case rec.End == StopEndBusy && cue == cueCancel:
		w.log.Warn("fast stop: sending the stop signal to a busy worker", args...)
	case rec.End == StopEndBusy && cue == cueSignal:
		w.log.Warn("worker still busy: sending the stop signal, its handler has the rest of the budget", args...)
	case rec.End == StopEndBusy:
		w.log.Info("sending the stop signal to a worker with connections open", args...)
	default:
		w.log.Info("worker drained: sending the stop signal", args...)
	}
	s.signalFamily(w)
}

// killAtDeadline kills what is left of a signalled worker's process group
// and records the work it cuts.
func (s *Supervisor) killAtDeadline(w *worker) {
	rec := w.stopRecord()
	rec.End, rec.Cut = StopEndKilled, s.workInFlight(w)
	w.setStopRecord(rec)
	w.log.Warn("killing worker process group: still running at the deadline", rec.counts()...)
	s.killGroup(w)
}

// workInFlight is the work that holds the worker now: its requests as the
// Router counts them, or in direct mode the connections its process group
// holds on its public socket.
func (s *Supervisor) workInFlight(w *worker) int {
	if s.cfg.Sockets != nil {
		return connsOn(w.pid, w.publicPort)
	}
	return s.cfg.Router.InFlight(w.key)
}

// killGroup removes whatever is left of the worker's process group, such as
// the children of a wrapper command, and the processes it started outside
// the group.
func (s *Supervisor) killGroup(w *worker) {
	out := outsideGroup(s.fams.members(w.fam), w.pid)
	if err := w.signal(syscall.SIGKILL); err != nil {
		w.log.Warn("kill process group", "error", err)
	}
	s.signalAll(w, out, syscall.SIGKILL)
}

// stopClock holds the deadlines of one worker's stop.
type stopClock struct {
	ctx      context.Context
	kill     time.Time // the kill deadline; zero without one
	signalAt *time.Timer
	signalC  <-chan time.Time // nil without a kill deadline
}

// newStopClock returns the clock of a stop within ctx that keeps share of
// its budget for the worker's stop handler.
func newStopClock(ctx context.Context, share time.Duration) *stopClock {
	c := &stopClock{ctx: ctx}
	if d, ok := ctx.Deadline(); ok {
		c.kill = d
		c.signalAt = time.NewTimer(time.Until(d.Add(-share)))
		c.signalC = c.signalAt.C
	}
	return c
}

func (c *stopClock) close() {
	if c.signalAt != nil {
		c.signalAt.Stop()
	}
}

// left returns the time until the kill deadline.
func (c *stopClock) left() (time.Duration, bool) {
	if c.kill.IsZero() {
		return 0, false
	}
	return max(time.Until(c.kill), 0), true
}

// await waits until ch closes, the worker exits, the signal deadline comes
// or the stop's ctx ends.
func (c *stopClock) await(w *worker, ch <-chan struct{}) stopCue {
	select {
	case <-w.gone:
		return cueGone
	case <-ch:
		return cueClosed
	case <-c.signalC:
		return cueSignal
	case <-c.ctx.Done():
		return cueCancel
	}
}

// awaitExit waits for the exit of a signalled worker. It reports false
// when the worker must be killed: at the kill deadline, or HurryGrace into
// a fast stop if that comes first.
func (c *stopClock) awaitExit(w *worker) bool {
	select {
	case <-w.gone:
		return true
	case <-c.ctx.Done():
	}
	if errors.Is(context.Cause(c.ctx), context.DeadlineExceeded) {
		return false
	}
	wait := HurryGrace
	if left, ok := c.left(); ok {
		wait = min(wait, left)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.gone:
		return true
	case <-t.C:
		return false
	}
}
