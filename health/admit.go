package health

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// admission bounds the admin listener's connections without turning a new
// one away. At its limit, a new connection evicts an older one: from the
// peer address that holds the most connections, the one that has waited
// longest since it was accepted or began its last request. A probe is a
// new connection whose request follows at once, so it is the last
// candidate; a client that holds connections open (idle, or sending a
// header that never ends) loses its own oldest ones first, and cannot keep
// more than the limit open, whatever it does.
//
// It is safe for concurrent use; Accept is meant for one goroutine.
type admission struct {
	net.Listener
	max int

	mu     sync.Mutex // protects conns, peers, dying
	conns  map[*admitted]struct{}
	peers  map[string]int // live connections per peer address
	dying  int            // evicted connections whose server has not closed them yet
	closed *sync.Cond     // signalled when an evicted connection is closed
}

// newAdmission returns ln with at most max live connections.
func newAdmission(ln net.Listener, max int) *admission {
	a := &admission{Listener: ln, max: max, conns: map[*admitted]struct{}{}, peers: map[string]int{}}
	a.closed = sync.NewCond(&a.mu)
	return a
}

// Accept implements net.Listener. It accepts the next connection and, at
// the limit, evicts another to make room for it.
func (a *admission) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ac := &admitted{Conn: c, a: a, peer: peerOf(c)}
	ac.touch()
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.conns)-a.dying >= a.max {
		a.evict(a.victim())
	}
	// An evicted connection's goroutine ends as soon as its read fails;
	// waiting for it keeps the server's own count below its Concurrency,
	// where it would answer 503.
	for a.dying > a.max {
		a.closed.Wait()
	}
	a.conns[ac] = struct{}{}
	a.peers[ac.peer]++
	return ac, nil
}

// victim returns the live connection to evict.
func (a *admission) victim() *admitted {
	var v *admitted
	for c := range a.conns {
		if c.evicted {
			continue
		}
		if v == nil {
			v = c
			continue
		}
		cn, vn := a.peers[c.peer], a.peers[v.peer]
		if cn > vn || cn == vn && c.since.Load() < v.since.Load() {
			v = c
		}
	}
	return v
}

// evict closes c; its server sees the read fail and closes it in turn.
func (a *admission) evict(c *admitted) {
	c.evicted = true
	a.dying++
	a.forget(c.peer)
	_ = c.Conn.Close() // the server's own Close reports the error, if any
}

// forget counts one live connection less for peer.
func (a *admission) forget(peer string) {
	if a.peers[peer]--; a.peers[peer] <= 0 {
		delete(a.peers, peer)
	}
}

// release removes c once its server has closed it.
func (a *admission) release(c *admitted) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.conns, c)
	if c.evicted {
		a.dying--
		a.closed.Broadcast()
		return
	}
	a.forget(c.peer)
}

// admitted is a connection that admission counts until it is closed.
type admitted struct {
	net.Conn
	a     *admission
	peer  string       // the peer's address without its port
	since atomic.Int64 // when it was accepted or began its last request, in Unix ns
	once  sync.Once

	evicted bool // guarded by a.mu
}

// touch notes that the connection began a request.
func (c *admitted) touch() { c.since.Store(time.Now().UnixNano()) }

// Close implements net.Conn.
func (c *admitted) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.a.release(c) })
	return err
}

// peerOf returns the address of c's peer without its port.
func peerOf(c net.Conn) string {
	addr := c.RemoteAddr()
	if addr == nil {
		return ""
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap().String()
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}
