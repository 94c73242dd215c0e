package proxy

import (
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// UpstreamConfig configures the connections from the proxy to workers.
type UpstreamConfig struct {
	// MaxConns bounds the connections to one worker (default 1024). A request
	// that finds them all busy waits up to ConnWait for one.
	MaxConns int
	// ConnWait is how long a request waits for a free connection (default 5s).
	ConnWait time.Duration
	// IdleTimeout closes idle keep-alive connections to a worker (default 4s).
	// It must stay below the worker's own keep-alive timeout (Node's default
	// keepAliveTimeout is 5s), or the worker closes sockets the proxy is
	// about to reuse.
	IdleTimeout time.Duration
	// HeaderBufferSize bounds a worker's response header block (default 16KiB).
	HeaderBufferSize int
}

// Defaults for UpstreamConfig.
const (
	DefaultUpstreamMaxConns    = 1024
	DefaultUpstreamConnWait    = 5 * time.Second
	DefaultUpstreamIdleTimeout = 4 * time.Second
	DefaultHeaderBufferSize    = 16 << 10
)

// dialTimeout bounds connecting to a worker on loopback, where a live worker
// accepts at once and a dead one refuses at once.
const dialTimeout = 3 * time.Second

func (c *UpstreamConfig) setDefaults() {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultUpstreamMaxConns
	}
	if c.ConnWait <= 0 {
		c.ConnWait = DefaultUpstreamConnWait
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultUpstreamIdleTimeout
	}
	if c.HeaderBufferSize <= 0 {
		c.HeaderBufferSize = DefaultHeaderBufferSize
	}
}

// newClient returns the keep-alive pool for one worker. fasthttp's own
// retries would go to the same worker, so they are off: the handler retries
// on another worker itself.
//
// responseTimeout (0 for none) bounds the wait for the response header after
// the request is written. fasthttp has no such setting for streamed bodies:
// its ReadTimeout deadline stays on the connection while the body streams,
// so it would also cut a long download or an event stream. The connections
// are therefore upstreamConns, and the handler lifts the deadline once the
// header is in (see liftReadDeadline).
func (c UpstreamConfig) newClient(addr string, responseTimeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      addr,
		Dial:                      dialUpstream,
		MaxConns:                  c.MaxConns,
		MaxConnWaitTimeout:        c.ConnWait,
		MaxIdleConnDuration:       c.IdleTimeout,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		ReadBufferSize:            c.HeaderBufferSize,
		ReadTimeout:               responseTimeout,
		StreamResponseBody:        true,
		DisablePathNormalizing:    true,
		NoDefaultUserAgentHeader:  true,
		// Last in, first out: under steady traffic the connections opened
		// for a burst go idle and are closed, instead of being kept alive
		// by round-robin reuse.
		ConnPoolStrategy: fasthttp.LIFO,
	}
}

func dialUpstream(addr string) (net.Conn, error) {
	c, err := dialWorker(addr)
	if err != nil {
		return nil, err
	}
	u := &upstreamConn{Conn: withRawIO(c)}
	u.local = upstreamAddr{Addr: c.LocalAddr(), conn: u}
	return u, nil
}

// upstreamConn is a connection to a worker. Its LocalAddr, which fasthttp
// copies into every Response read from it, leads back to the connection, so
// the handler can reach the connection of a response it holds.
type upstreamConn struct {
	net.Conn
	local upstreamAddr
}

// LocalAddr implements net.Conn.
func (c *upstreamConn) LocalAddr() net.Addr { return &c.local }

// upstreamAddr is the local address of an upstreamConn.
type upstreamAddr struct {
	net.Addr
	conn *upstreamConn
}

// liftReadDeadline clears the read deadline fasthttp set on the connection
// a response came from, so its body may stream for as long as it takes.
func liftReadDeadline(resp *fasthttp.Response) {
	if a, ok := resp.LocalAddr().(*upstreamAddr); ok {
		_ = a.conn.SetReadDeadline(time.Time{}) // a failure shows on the next read
	}
}

// dialWorker connects to a worker: addr is a loopback host:port, or the
// path of a Unix socket (it then starts with "/").
func dialWorker(addr string) (net.Conn, error) {
	if strings.HasPrefix(addr, "/") {
		return net.DialTimeout("unix", addr, dialTimeout)
	}
	return net.DialTimeout("tcp", addr, dialTimeout)
}
