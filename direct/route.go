package direct

import (
	"os"
	"slices"
)

// target is a worker that serves its slot's socket, and the private
// address where it serves the same app.
type target struct {
	slot int
	addr string
}

// Serve says that the worker with key serves slot's socket and answers on
// addr, its private listener (a loopback host:port or a Unix socket's
// path), as the supervisor's Router.Add says of a ready worker.
func (s *Sockets) Serve(key uint64, slot int, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.serving[key] = target{slot: slot, addr: addr}
	s.routeLocked()
}

// Unserve says that the worker with key stopped serving (it crashed, is
// being stopped or replaced, or failed its health checks). Unknown keys
// are ignored.
func (s *Sockets) Unserve(key uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.serving[key]
	if !ok || s.closed {
		return
	}
	delete(s.serving, key)
	if !s.servedLocked(t.slot) {
		delete(s.notAccepting, t.slot) // it was about this worker
	}
	s.routeLocked()
}

// routeLocked brings the steering and the covers in line with who serves:
// new connections go only to the slots with a serving worker, and a slot
// without one has its queue accepted by percore and passed on, as long as
// some serving worker takes passed connections. Otherwise connections wait
// in the queues for the next worker.
func (s *Sockets) routeLocked() {
	if s.closed {
		return
	}
	live := s.liveLocked()
	s.steerLocked(live)
	passable := s.passableLocked()
	for slot, f := range s.files {
		c := s.covers[slot]
		served := s.servedLocked(slot)
		if !served && len(s.serving) > 0 && !passable {
			s.noteWaitLocked(slot)
		}
		switch want := !served && passable && !s.releasing[slot]; {
		case want && c == nil:
			if c = s.startCoverLocked(slot, f); c != nil {
				s.covers[slot] = c
			}
		case !want && c != nil:
			c.stop()
			delete(s.covers, slot)
		}
	}
}

// steerLocked attaches the program that sends new connections to the
// sockets of the live slots only, when that set changed.
func (s *Sockets) steerLocked(live map[int]bool) {
	allowed := make([]int, 0, len(s.order))
	for i, slot := range s.order {
		if live[slot] {
			allowed = append(allowed, i)
		}
	}
	if len(allowed) == len(s.order) {
		allowed = allowed[:0] // every slot serves: the kernel's hash spreads best
	}
	if s.steering != nil && slices.Equal(allowed, s.steering) || len(s.order) == 0 {
		return
	}
	if err := attachSteering(s.files[s.order[0]], steerProgram(allowed)); err != nil {
		s.log.Warn("new connections may reach a slot without a worker and wait for it", "error", err)
		return
	}
	s.steering = allowed
	s.log.Debug("steering new connections", "group_indexes", allowed, "slots", s.order)
}

// steerAcrossLocked attaches, through via (a socket of the group), a
// program that is right both before and after a socket leaves the group:
// it sends new connections only to the live slots whose index the departure
// does not move. When there is none, the program of the new order follows
// at once.
func (s *Sockets) steerAcrossLocked(after []int, via *os.File) {
	live := s.liveLocked()
	var stable []int
	for i, slot := range after {
		if s.order[i] == slot && live[slot] {
			stable = append(stable, i)
		}
	}
	if len(stable) == 0 {
		return
	}
	if err := attachSteering(via, steerProgram(stable)); err != nil {
		s.log.Warn("steer new connections while a socket closes", "error", err)
	}
}

// liveLocked returns the slots that have a serving worker that accepts.
func (s *Sockets) liveLocked() map[int]bool {
	live := make(map[int]bool, len(s.serving))
	for _, t := range s.serving {
		if _, out := s.notAccepting[t.slot]; !out {
			live[t.slot] = true
		}
	}
	return live
}

// servedLocked tells whether slot has a serving worker, accepting or not:
// the queue of one that does not accept is left to it.
func (s *Sockets) servedLocked(slot int) bool {
	for _, t := range s.serving {
		if t.slot == slot {
			return true
		}
	}
	return false
}
