package direct

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"time"
)

// A worker can serve (it answers its private listener, its pings) and yet
// not accept on its public socket: it is out of file descriptors, or its
// event loop is stuck. Node then resets every new connection (libuv's
// EMFILE fallback accepts and closes them) or leaves them in the queue
// until it is full and the kernel drops their handshakes. percore holds
// every slot's socket, so it sees both from outside, without touching the
// worker: the accept queue of the socket (acceptQueue) and the worker's
// descriptors against its limit (descriptors). A slot whose worker does not
// accept is steered around like a slot with no serving worker and is not
// counted ready; it comes back when its worker accepts again.
//
// What is already queued on such a slot stays there for its worker: it is
// the evidence of whether the worker accepts, and a worker stuck for good
// is ejected by the health checks, whose connections it does not accept
// either, after which percore passes its queue on (bridge.go).

// Defaults of AcceptConfig.
const (
	// DefaultAcceptInterval is how often each socket is read: five
	// readings a window, each a few system calls per slot.
	DefaultAcceptInterval = 200 * time.Millisecond
	// DefaultAcceptWindow is how long a queue may hold connections without
	// draining before its worker counts as not accepting. Node accepts
	// everything queued at each turn of its event loop, so a worker that
	// accepts empties its queue many times a second; a queue that has not
	// shrunk for a second means a loop blocked for as long, which already
	// delays every client of the worker, and is when a client whose
	// handshake was dropped sends it again (the initial retransmission
	// timeout of RFC 6298). Shorter pauses, a garbage collection or one
	// slow synchronous request, do not count.
	DefaultAcceptWindow = time.Second
)

// AcceptConfig says how Sockets watch whether each slot's worker accepts.
type AcceptConfig struct {
	// Interval is how often each slot with a serving worker is read
	// (default DefaultAcceptInterval).
	Interval time.Duration
	// Window is how long connections may wait in a queue that does not
	// shrink before the slot's worker counts as not accepting (default
	// DefaultAcceptWindow).
	Window time.Duration
	// PIDs returns, by slot, the process that accepts on the slot's
	// socket, whose descriptors are counted against its limit. Nil, or a
	// slot missing: only the queue is read. It is called once a reading,
	// from the watch's goroutine.
	PIDs func() map[int]int
}

// acceptSample is one reading of a slot: its accept queue, and its
// worker's descriptors (0 when unknown).
type acceptSample struct {
	at              time.Time
	queued, backlog int
	open, limit     int
}

// acceptState is what the watch knows of one slot's worker.
type acceptState struct {
	key    uint64    // the serving worker the state is about
	since  time.Time // first reading of the current stretch of a non-empty queue that did not shrink; zero when none
	last   int       // the queue at the previous reading
	out    bool      // the worker counts as not accepting
	reason string    // why, while out
}

// judge takes one reading and reports whether the worker's standing
// changed. A worker goes out on a full queue, on all its descriptors open,
// or on a queue that held connections and did not shrink for window; it
// comes back once its queue is empty and it has descriptors to spare.
func (st *acceptState) judge(s acceptSample, window time.Duration) bool {
	switch {
	case s.queued == 0:
		st.since = time.Time{}
	case s.queued < st.last || st.since.IsZero():
		st.since = s.at // it accepted some, or the stretch begins
	}
	st.last = s.queued
	why := ""
	switch {
	case s.backlog > 0 && s.queued >= s.backlog:
		// Linux queues one more than the backlog before it drops handshakes.
		why = fmt.Sprintf("accept queue full: %d of %d", min(s.queued, s.backlog), s.backlog)
	case s.limit > 0 && s.open >= s.limit:
		why = fmt.Sprintf("out of file descriptors: %d open, limit %d", s.open, s.limit)
	case !st.since.IsZero() && s.at.Sub(st.since) >= window:
		why = fmt.Sprintf("not accepting for %.1fs (%d queued)", s.at.Sub(st.since).Seconds(), s.queued)
	}
	if !st.out {
		if why == "" {
			return false
		}
		st.out, st.reason = true, why
		return true
	}
	if s.queued == 0 && (s.limit == 0 || s.limit-s.open >= spareDescriptors(s.limit)) {
		st.out, st.reason = false, ""
		return true
	}
	if why != "" {
		st.reason = why
	}
	return false
}

// spareDescriptors is how many descriptors a worker that ran out must have
// free again before it counts as accepting: 2 % of its limit, at least
// one, so that a client holding connections open, which takes each one
// that frees, does not make the slot come and go with every connection.
func spareDescriptors(limit int) int { return limit/50 + 1 }

// WatchAccepting starts reading, every cfg.Interval, the accept queue of
// each slot with a serving worker and that worker's descriptors. A slot
// whose worker does not accept gets no new connections, as a slot without
// a serving worker, and NotAccepting says why, until it accepts again.
// Close stops the watch. Call it at most once.
func (s *Sockets) WatchAccepting(cfg AcceptConfig) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultAcceptInterval
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultAcceptWindow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go s.watchAccepting(cfg)
}

// NotAccepting returns, by slot, why the serving worker of a slot counts
// as not accepting ("accept queue full: 128 of 128"); the slots missing
// accept.
func (s *Sockets) NotAccepting() map[int]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.notAccepting)
}

// watchAccepting is the watch's loop; it ends when the sockets close.
func (s *Sockets) watchAccepting(cfg AcceptConfig) {
	defer s.wg.Done()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	states := make(map[int]*acceptState)
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		var pids map[int]int
		if cfg.PIDs != nil {
			pids = cfg.PIDs()
		}
		s.readAccepting(states, pids, cfg.Window)
	}
}

// watched is a slot to read: its socket and its serving worker.
type watched struct {
	slot int
	key  uint64
	file *os.File
}

// readAccepting reads every slot with a serving worker once and publishes
// the changes.
func (s *Sockets) readAccepting(states map[int]*acceptState, pids map[int]int, window time.Duration) {
	s.mu.Lock()
	bySlot := make(map[int]watched, len(s.serving))
	for key, t := range s.serving {
		// Two workers share a slot's socket while one replaces the other:
		// the slot is judged once, about the newer (the supervisor's keys grow).
		if f := s.files[t.slot]; f != nil && !s.releasing[t.slot] && key >= bySlot[t.slot].key {
			bySlot[t.slot] = watched{slot: t.slot, key: key, file: f}
		}
	}
	s.mu.Unlock()
	slots := slices.Collect(maps.Values(bySlot))
	now := time.Now()
	seen := make(map[int]bool, len(slots))
	changed := false
	for _, w := range slots {
		seen[w.slot] = true
		st := states[w.slot]
		if st == nil || st.key != w.key {
			changed = changed || st != nil && st.out
			st = &acceptState{key: w.key}
			states[w.slot] = st
		}
		sample := acceptSample{at: now}
		var err error
		if sample.queued, sample.backlog, err = acceptQueue(w.file); err != nil {
			continue // released meanwhile
		}
		if pid := pids[w.slot]; pid > 0 {
			if sample.open, sample.limit, err = descriptors(pid); err != nil {
				sample.open, sample.limit = 0, 0 // it exited meanwhile
			}
		}
		if st.judge(sample, window) {
			changed = true
			s.logAccepting(w.slot, st)
		}
	}
	for slot, st := range states {
		if !seen[slot] {
			changed = changed || st.out
			delete(states, slot)
		}
	}
	if changed || s.acceptingStale(states) {
		s.publishAccepting(states)
	}
}

// logAccepting says that slot's worker went out or came back.
func (s *Sockets) logAccepting(slot int, st *acceptState) {
	if st.out {
		s.log.Warn("worker not accepting new connections; they go to the others", "worker", slot, "reason", st.reason)
		return
	}
	s.log.Info("worker accepting new connections again", "worker", slot)
}

// acceptingStale tells whether a reason shown differs from the state's,
// as when a worker out for some time shows a longer wait.
func (s *Sockets) acceptingStale(states map[int]*acceptState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for slot, st := range states {
		if st.out && s.servingKeyLocked(slot, st.key) && s.notAccepting[slot] != st.reason {
			return true
		}
	}
	return false
}

// publishAccepting sets which slots do not accept and steers accordingly.
// A slot whose worker stopped serving since it was read is left out.
func (s *Sockets) publishAccepting(states map[int]*acceptState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	out := make(map[int]string)
	for slot, st := range states {
		if st.out && s.servingKeyLocked(slot, st.key) {
			out[slot] = st.reason
		}
	}
	s.notAccepting = out
	s.routeLocked()
}

// servingKeyLocked tells whether the worker with key still serves slot.
func (s *Sockets) servingKeyLocked(slot int, key uint64) bool {
	t, ok := s.serving[key]
	return ok && t.slot == slot
}
