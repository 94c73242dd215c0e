package health

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// Workers tells how many workers are ready to serve.
type Workers interface {
	ReadyWorkers() int
}

// Listeners tells whether percore's listeners are accepting connections.
type Listeners interface {
	// NotAccepting returns why a listener is not accepting new connections
	// (out of file descriptors, say), or "" while every one is.
	NotAccepting() string
}

// Config configures a Server.
type Config struct {
	// Workers is where readiness comes from. Required.
	Workers Workers
	// ReadyMin is how many ready workers make /readyz answer 200 (default 1).
	ReadyMin int
	// StartWorkers, when set, is how many workers must be ready at once
	// before /readyz first answers 200, if more than ReadyMin: the whole
	// first set of workers. It is read until then.
	StartWorkers func() int
	// Listeners, when set, makes /healthz and /readyz answer 503 while a
	// listener is not accepting connections.
	Listeners Listeners
	// Status, when set, serves GET /status.
	Status StatusSource
	// Metrics, when set, serves GET /metrics.
	Metrics MetricsWriter
	// Hosts are the names, besides IP addresses and localhost, that
	// requests may give as Host; other Hosts get 421 Misdirected Request,
	// which keeps pages that rebind their own name to percore's address
	// from reading the admin listener. A request without a Host is served.
	Hosts []string
	// Logger receives the server's errors (default: a null logger).
	Logger hclog.Logger
}

// Server serves /healthz, /livez, /readyz, /status, /metrics and, with
// /status, a live page of it at /. It is safe for concurrent use.
type Server struct {
	cfg      Config
	page     page
	hosts    hostSet
	srv      *fasthttp.Server
	shutdown atomic.Bool
	started  atomic.Bool // StartWorkers were ready at once

	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// Limits of the admin listener: probes and scrapes are short requests from
// a few clients, so a handful of connections, each short-lived, serve them.
// A client that holds connections open, or opens thousands, must not grow
// percore's memory (each connection holds a goroutine and its buffers), nor
// starve the probes: past MaxConns a new connection is still accepted and
// read, and an older one is closed to make room (see admission).
const (
	readTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
	idleTimeout  = 5 * time.Second
	// MaxConns is how many connections the admin listener serves at once.
	MaxConns = 64
	// serverConcurrency is fasthttp's own limit, past which it answers 503:
	// never reached, since admission keeps at most MaxConns live
	// connections and MaxConns evicted ones that are closing.
	serverConcurrency = 4 * MaxConns
)

// New returns a Server that will serve on ln.
func New(ln net.Listener, cfg Config) *Server {
	if cfg.ReadyMin < 1 {
		cfg.ReadyMin = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Server{cfg: cfg, page: newPage(pageHTML), hosts: newHostSet(cfg.Hosts), ln: newAdmission(ln, MaxConns),
		done: make(chan struct{})}
	s.srv = &fasthttp.Server{
		Handler:               s.serve,
		NoDefaultServerHeader: true,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		Concurrency:           serverConcurrency,
		MaxRequestBodySize:    4 << 10,
		Logger:                fasthttpLogger{cfg.Logger},
	}
	return s
}

// MarkShuttingDown makes /readyz answer 503 from now on.
func (s *Server) MarkShuttingDown() { s.shutdown.Store(true) }

// Run serves until Stop; it is the admin server's run.Group actor.
func (s *Server) Run() error {
	err := s.srv.Serve(s.ln)
	<-s.done
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

// Stop ends the server; call it last so probes are answered until the end.
func (s *Server) Stop() {
	s.once.Do(func() {
		defer close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.srv.ShutdownWithContext(ctx) // probes in flight may be cut; nothing else to do
	})
}

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*admitted); ok {
		c.touch()
	}
	if !s.hosts.allows(string(ctx.Host())) {
		ctx.Error(misdirected, fasthttp.StatusMisdirectedRequest)
		ctx.Response.Header.Set("Cache-Control", "no-store")
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch string(ctx.Path()) {
	case "/":
		if s.cfg.Status == nil {
			ctx.Error("not found\n", fasthttp.StatusNotFound)
			return
		}
		s.page.serve(ctx)
	case "/livez":
		ctx.SetBodyString("ok\n")
	case "/healthz":
		s.healthz(ctx)
	case "/readyz":
		s.readyz(ctx)
	case "/status":
		s.status(ctx)
	case "/metrics":
		s.metrics(ctx)
	default:
		ctx.Error("not found\n", fasthttp.StatusNotFound)
	}
}

// notAccepting returns why a listener is not accepting, or "". While one is
// not, the answer closes its connection: every descriptor counts.
func (s *Server) notAccepting(ctx *fasthttp.RequestCtx) string {
	if s.cfg.Listeners == nil {
		return ""
	}
	reason := s.cfg.Listeners.NotAccepting()
	if reason != "" {
		ctx.SetConnectionClose()
	}
	return reason
}

// healthz answers 200 while percore runs and its listeners accept, else 503
// with the reason.
func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	if reason := s.notAccepting(ctx); reason != "" {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString(reason + "\n")
		return
	}
	ctx.SetBodyString("ok\n")
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	ready := s.cfg.Workers.ReadyWorkers()
	refused := s.notAccepting(ctx)
	var reason string
	switch {
	case refused != "":
		reason = refused
	case s.shutdown.Load():
		reason = "shutting down"
	case ready < s.cfg.ReadyMin:
		reason = fmt.Sprintf("%d of the %d workers needed are ready", ready, s.cfg.ReadyMin)
	default:
		reason = s.starting(ready)
	}
	if reason != "" {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
	if !ctx.QueryArgs().Has("verbose") {
		if reason != "" {
			ctx.SetBodyString("not ready\n")
		} else {
			ctx.SetBodyString("ok\n")
		}
		return
	}
	if reason == "" {
		reason = fmt.Sprintf("%d workers ready", ready)
	}
	ctx.SetBodyString(reason + "\n" + s.notReady())
}

// fasthttpLogger routes fasthttp's own messages to hclog.
type fasthttpLogger struct{ log hclog.Logger }

// Printf implements fasthttp.Logger.
func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
