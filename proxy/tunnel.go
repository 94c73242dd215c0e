package proxy

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// tunnelBufferSize is the copy buffer of each direction of a tunnel. An
// open tunnel holds two, besides fasthttp's read buffer of the client's
// connection: about 32KiB in all, whatever passes through it.
const tunnelBufferSize = 8 << 10

var tunnelBuffers = sync.Pool{New: func() any {
	b := make([]byte, tunnelBufferSize)
	return &b
}}

// tunnel joins a client's hijacked connection to a worker's connection after
// a 101, and copies bytes both ways until both sides are done. It counts as
// one unit of the worker's in-flight work, so a draining worker keeps it
// until it ends.
type tunnel struct {
	set      *tunnelSet
	b        *backend
	worker   net.Conn
	greeting []byte       // the worker's 101 head, and any bytes that came with it
	entry    *accessEntry // nil when the access log is off

	mu     sync.Mutex // protects client and closed
	client net.Conn   // the client's connection, once hijacked
	closed bool

	released atomic.Bool // the worker's in-flight unit was given back
	wg       sync.WaitGroup
}

// serve is the fasthttp.HijackHandler: it runs on the connection's own
// goroutine, owns the two copiers and returns when both have stopped.
// fasthttp closes c after it returns.
func (t *tunnel) serve(c net.Conn) {
	raw := c
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn() // for CloseWrite and Close; reads go through c, which holds bytes fasthttp read ahead
	}
	defer t.finish()
	if !t.attach(raw) {
		return
	}
	if _, err := raw.Write(t.greeting); err != nil {
		return
	}
	t.greeting = nil
	toWorker := &copier{t: t, dst: t.worker, src: c}
	toClient := &copier{t: t, dst: raw, src: t.worker}
	t.wg.Add(2)
	go toWorker.run()
	go toClient.run()
	t.wg.Wait()
	t.entry.write(toClient.n, nil)
}

// attach records the client's connection, unless the tunnel was closed
// before fasthttp handed it over.
func (t *tunnel) attach(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.client = c
	return true
}

// close closes both connections, which ends both copiers. It may be called
// more than once and from any goroutine. It reports whether the client's
// connection had been handed over; if not, it never will be.
func (t *tunnel) close() (attached bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		_ = t.worker.Close() // closing is the point; an error changes nothing
		if t.client != nil {
			_ = t.client.Close()
		}
	}
	return t.client != nil
}

// abort closes the tunnel from outside. A tunnel whose hijack never came
// (fasthttp drops it when the client's connection fails first) is finished
// here, since no serve will do it.
func (t *tunnel) abort() {
	if !t.close() {
		t.set.remove(t)
		t.release()
	}
}

// finish ends the tunnel's life: closed, off the set, the worker's
// in-flight unit given back.
func (t *tunnel) finish() {
	t.close()
	t.set.remove(t)
	t.release()
}

// release gives back the worker's in-flight unit, once.
func (t *tunnel) release() {
	if t.released.CompareAndSwap(false, true) {
		t.b.tunnels.Add(-1)
		t.b.done()
	}
}

// copier copies one direction of a tunnel. When its source ends cleanly it
// passes the half-close on (CloseWrite) and the other direction goes on;
// on an error it closes the whole tunnel.
type copier struct {
	t   *tunnel
	dst net.Conn
	src io.Reader
	n   int64 // bytes copied; read after the tunnel's WaitGroup
}

// run is the copier's goroutine; the tunnel's serve waits for it.
func (c *copier) run() {
	defer c.t.wg.Done()
	buf := tunnelBuffers.Get().(*[]byte)
	// The wrappers hide ReadFrom and WriteTo, which would allocate a buffer
	// of their own for a connection that cannot splice.
	n, err := io.CopyBuffer(struct{ io.Writer }{c.dst}, struct{ io.Reader }{c.src}, *buf)
	tunnelBuffers.Put(buf)
	c.n = n
	if err == nil {
		if cw, ok := c.dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
	}
	c.t.close()
}

// tunnelSet tracks open tunnels, so a stop can let them finish and close
// what remains at its deadline. It is safe for concurrent use.
type tunnelSet struct {
	mu       sync.Mutex // protects open, stopping
	open     map[*tunnel]struct{}
	stopping bool          // no new tunnels
	idle     chan struct{} // closed once stopping and no tunnel is open
}

func newTunnelSet() *tunnelSet {
	return &tunnelSet{open: make(map[*tunnel]struct{}), idle: make(chan struct{})}
}

// add registers t; false when the set is stopping.
func (s *tunnelSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.open[t] = struct{}{}
	return true
}

func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.open[t]; !ok {
		return
	}
	delete(s.open, t)
	if s.stopping && len(s.open) == 0 {
		close(s.idle)
	}
}

func (s *tunnelSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// closeAll closes every open tunnel.
func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	list := make([]*tunnel, 0, len(s.open))
	for t := range s.open {
		list = append(list, t)
	}
	s.mu.Unlock()
	for _, t := range list {
		t.abort()
	}
}

// stop refuses new tunnels and lets the open ones stop holding their
// workers' drain, so the supervisor can ask the workers to stop, and an app
// can close its WebSockets itself, while the tunnels still carry its
// goodbyes. It may be called more than once.
func (s *tunnelSet) stop() {
	s.mu.Lock()
	list := make([]*tunnel, 0, len(s.open))
	for t := range s.open {
		list = append(list, t)
	}
	if !s.stopping {
		s.stopping = true
		if len(s.open) == 0 {
			close(s.idle)
		}
	}
	s.mu.Unlock()
	for _, t := range list {
		t.release()
	}
}

// wait returns once every tunnel has ended; when ctx ends first, it closes
// the remaining ones and waits for them. Call it after stop.
func (s *tunnelSet) wait(ctx context.Context) {
	select {
	case <-s.idle:
		return
	case <-ctx.Done():
	}
	s.closeAll()
	<-s.idle
}
