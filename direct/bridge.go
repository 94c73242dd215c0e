package direct

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// A slot without a serving worker gets no new connections (steerLocked),
// but what was queued on its socket before must neither be reset nor wait
// for the slot's next worker: percore accepts it and passes it, byte for
// byte, to a serving worker's private listener, which hands it to the same
// server the public socket feeds. The app sees the connection come from
// the loopback address.

// bridgeWait bounds how long an accepted connection waits for a serving
// worker to pass it to before it is closed.
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

// accept is the cover's loop: every connection accepted is passed on by a
// pipe of its own. It ends once stopped and the queue is empty.
func (s *Sockets) accept(slot int, c *cover) {
	defer s.wg.Done()
	defer close(c.done)
	defer c.ln.Close()
	backoff := 5 * time.Millisecond
	for {
		conn, err := c.ln.Accept()
		if err == nil {
			backoff = 5 * time.Millisecond
			s.startPipe(slot, conn)
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

// pipe is one connection passed on: the client's and the worker's ends.
type pipe struct {
	client, worker net.Conn
	once           sync.Once
}

func (p *pipe) close() {
	p.once.Do(func() {
		p.client.Close()
		if p.worker != nil {
			p.worker.Close()
		}
	})
}

// startPipe passes conn, accepted on slot's socket, to a serving worker.
func (s *Sockets) startPipe(slot int, conn net.Conn) {
	p := &pipe{client: conn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.pipes[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			p.close()
			s.mu.Lock()
			delete(s.pipes, p)
			s.mu.Unlock()
		}()
		worker, err := s.dialServing()
		if err != nil {
			s.unpassed.Add(1)
			s.log.Warn("a connection queued for a worker that is gone found no other worker; closed",
				"worker", slot, "client", conn.RemoteAddr(), "error", err)
			return
		}
		s.mu.Lock()
		p.worker = worker
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		s.passed.Add(1)
		up, down := relay(conn, worker)
		s.log.Debug("passed a queued connection on", "worker", slot, "bytes_in", up, "bytes_out", down)
	}()
}

// errNoWorker says no worker served within bridgeWait.
var errNoWorker = errors.New("no worker serves")

// dialServing connects to the private listener of a serving worker,
// trying the others when one refuses, and waiting up to bridgeWait for one
// to serve.
func (s *Sockets) dialServing() (net.Conn, error) {
	deadline := time.Now().Add(bridgeWait)
	var lastErr error = errNoWorker
	for time.Now().Before(deadline) {
		s.mu.Lock()
		t, ok := s.pickLocked()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if ok {
			network := "tcp"
			if strings.HasPrefix(t.addr, "/") {
				network = "unix"
			}
			c, err := net.DialTimeout(network, t.addr, time.Second)
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, lastErr
}

// relay copies both ways until both directions ended; a direction that
// ends cleanly half-closes the other side, as the client or the worker did.
func relay(client, worker net.Conn) (int64, int64) {
	done := make(chan struct{})
	var up int64
	go func() {
		defer close(done)
		up = copyHalf(worker, client)
	}()
	down := copyHalf(client, worker)
	<-done
	return up, down
}

// copyHalf copies src to dst; at src's end it closes dst for writing, on an
// error it closes both, so the other direction ends too.
func copyHalf(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return n
	}
	dst.Close()
	return n
}
