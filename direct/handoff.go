package direct

import (
	"errors"
	"net"
	"os"
	"slices"
	"time"

	"github.com/percore/percore/nodeipc"
)

// A connection queued on the socket of a slot without a serving worker is
// passed on as itself: percore accepts it and passes its descriptor over
// the IPC channel of a serving worker (nodeipc), whose preload hands it to
// the server the public socket feeds. The app sees the client's own
// address, as for every other connection. Where no serving worker can take
// a connection that way (its runtime has no channel, or the channel ended),
// percore accepts nothing: the connection waits in its slot's queue for the
// slot's next worker.

// ackWait bounds how long a worker has to answer a passed connection.
const ackWait = 5 * time.Second

// Channel gives the worker with key an IPC channel over which it takes
// passed connections: it returns the worker's end, to pass as its
// descriptor fd and close once the worker started, and the variables that
// tell the runtime about it. It returns no file when the workers' runtime
// takes no passed connection (Config.Handoff). The channel ends when the
// worker exits (its end closes) or the sockets close.
func (s *Sockets) Channel(key uint64, fd int) (*os.File, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	if !s.handoff {
		return nil, nil, nil
	}
	ch, theirs, err := nodeipc.Open(s.channelChanged)
	if err != nil {
		return nil, nil, err
	}
	s.channels[key] = ch
	return theirs, nodeipc.Env(fd), nil
}

// channelChanged brings the routing in line with a channel that became
// ready, stalled, or ended; it forgets the channels that ended.
func (s *Sockets) channelChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for key, ch := range s.channels {
		select {
		case <-ch.Done():
			delete(s.channels, key)
		default:
		}
	}
	s.routeLocked()
}

// passableLocked returns whether a serving worker takes passed connections
// now.
func (s *Sockets) passableLocked() bool {
	for key := range s.serving {
		if ch := s.channels[key]; ch != nil && ch.Passable() {
			return true
		}
	}
	return false
}

// noteWaitLocked says, once, that a slot's queue waits for the slot's next
// worker because no serving worker can take a passed connection at all
// (not merely not yet: a channel not ready yet is no reason to say so).
func (s *Sockets) noteWaitLocked(slot int) {
	if s.waitNoted {
		return
	}
	for key := range s.serving {
		if ch := s.channels[key]; ch != nil {
			select {
			case <-ch.Done():
			default:
				return // it may yet take them
			}
		}
	}
	s.waitNoted = true
	why := "the serving workers' IPC channels are gone"
	if !s.handoff {
		why = "the workers' runtime takes no passed connection"
	}
	s.log.Info("connections queued for a worker slot without a worker wait in its queue for its next worker: "+why,
		"worker", slot)
}

// pickChannelLocked returns the channel of the next serving worker that
// takes passed connections, round robin, preferring the workers that
// accept (accepting.go): one that does not may yet, when none does.
func (s *Sockets) pickChannelLocked() (*nodeipc.Channel, uint64, bool) {
	keys := make([]uint64, 0, len(s.serving))
	for _, accepting := range []bool{true, false} {
		for k, t := range s.serving {
			if _, out := s.notAccepting[t.slot]; out == accepting {
				continue
			}
			if ch := s.channels[k]; ch != nil && ch.Passable() {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			break
		}
	}
	if len(keys) == 0 {
		return nil, 0, false
	}
	slices.Sort(keys)
	s.next = (s.next + 1) % len(keys)
	return s.channels[keys[s.next]], keys[s.next], true
}

// handOff passes conn, accepted on slot's socket, to a serving worker,
// trying the others when one does not take it, for up to bridgeWait. It
// closes percore's copy in every case.
func (s *Sockets) handOff(slot int, conn *net.TCPConn) {
	defer conn.Close()
	// As the kernel made it: the worker's server sets what it wants, as it
	// does for the connections it accepts itself.
	conn.SetKeepAlive(false)
	conn.SetNoDelay(false)
	deadline := time.Now().Add(bridgeWait)
	var lastErr error = errNoWorker
	for {
		s.mu.Lock()
		ch, key, ok := s.pickChannelLocked()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			lastErr = ErrClosed
			break
		}
		if ok {
			err := ch.Pass(conn, ackWait)
			switch {
			case err == nil:
				s.passed.Add(1)
				s.log.Debug("passed a queued connection on", "worker", slot, "to", key, "client", conn.RemoteAddr())
				return
			case errors.Is(err, nodeipc.ErrNoAnswer):
				s.unanswered.Add(1)
				s.log.Warn("a worker did not answer for a connection passed to it; it gets no more until it does",
					"worker", slot, "to", key, "client", conn.RemoteAddr(), "wait", ackWait)
				return
			}
			lastErr = err
			s.log.Debug("a worker did not take a passed connection; trying another", "worker", slot, "to", key,
				"error", err)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.unpassed.Add(1)
	s.log.Warn("a connection queued for a worker that is gone found no other worker to take it; closed",
		"worker", slot, "client", conn.RemoteAddr(), "error", lastErr)
}

// closeChannels closes the channels of s, which is closed.
func (s *Sockets) closeChannels() {
	s.mu.Lock()
	chans := s.channels
	s.channels = map[uint64]*nodeipc.Channel{}
	s.mu.Unlock()
	for _, ch := range chans {
		ch.Close()
	}
}
