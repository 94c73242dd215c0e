package proxy

import (
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
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
	// Logger gets one warning for each worker that writes outside its
	// responses' framing (default: none).
	Logger hclog.Logger
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
// on another worker itself. Requests go through transport, which decides
// when a connection may carry another response.
//
// responseTimeout (0 for none) bounds the wait for the response header after
// the request is written; the body may then stream for as long as it takes.
func (c UpstreamConfig) newClient(addr string, slot int, responseTimeout time.Duration) *fasthttp.HostClient {
	var log hclog.Logger
	if c.Logger != nil {
		log = c.Logger.With("worker", slot)
	}
	return &fasthttp.HostClient{
		Addr:                      addr,
		Dial:                      dialUpstream,
		Transport:                 newTransport(log),
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
	return withRawIO(c), nil
}

// dialWorker connects to a worker: addr is a loopback host:port, or the
// path of a Unix socket (it then starts with "/").
func dialWorker(addr string) (net.Conn, error) {
	if strings.HasPrefix(addr, "/") {
		return net.DialTimeout("unix", addr, dialTimeout)
	}
	return net.DialTimeout("tcp", addr, dialTimeout)
}
