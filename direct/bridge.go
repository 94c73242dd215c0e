package direct

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// A slot without a serving worker gets no new connections (steerLocked),
// but what was queued on its socket before must neither be reset nor wait
// for the slot's next worker: percore accepts it and passes the connection
// itself to a serving worker (handoff.go), which hands it to the same
// server the public socket feeds.

// bridgeWait bounds how long an accepted connection waits for a serving
// worker to take it before it is closed.
const bridgeWait = 10 * time.Second

// cover accepts the queue of one slot's socket on percore's own copy.
type cover struct {
	ln       *net.TCPListener
	stopping chan struct{}
	done     chan struct{} // closed once the loop ended and closed ln
	once     sync.Once
}

// startCoverLocked starts accepting on slot's socket f; it returns nil, and
// logs why, when it cannot.
func (s *Sockets) startCoverLocked(slot int, f *os.File) *cover {
	ln, err := net.FileListener(f) // its own descriptor, non-blocking like the workers'
	if err != nil {
		s.log.Warn("cannot accept the connections queued for a worker that is gone; they wait for its replacement",
			"worker", slot, "error", err)
		return nil
	}
	c := &cover{ln: ln.(*net.TCPListener), stopping: make(chan struct{}), done: make(chan struct{})}
	s.log.Debug("passing the connections queued on a slot without a worker to the others", "worker", slot)
	s.wg.Add(1)
	go s.accept(slot, c)
	return c
}

// stop makes the accept loop take what is queued now and end.
func (c *cover) stop() {
	c.once.Do(func() {
		close(c.stopping)
		c.ln.SetDeadline(time.Now())
	})
}

// accept is the cover's loop: every connection accepted is passed on to a
// serving worker. It ends once stopped and the queue is empty.
func (s *Sockets) accept(slot int, c *cover) {
	defer s.wg.Done()
	defer close(c.done)
	defer c.ln.Close()
	backoff := 5 * time.Millisecond
	for {
		conn, err := c.ln.Accept()
		if err == nil {
			backoff = 5 * time.Millisecond
			s.handOff(slot, conn.(*net.TCPConn))
			continue
		}
		select {
		case <-c.stopping:
			return
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// Out of descriptors or memory: the connection waits in the queue.
		s.log.Debug("accept a queued connection", "worker", slot, "error", err)
		select {
		case <-c.stopping:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// errNoWorker says no worker took a connection within bridgeWait.
var errNoWorker = errors.New("no worker takes passed connections")
