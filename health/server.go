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

// Config configures a Server.
type Config struct {
	// Workers is where readiness comes from. Required.
	Workers Workers
	// ReadyMin is how many ready workers make /readyz answer 200 (default 1).
	ReadyMin int
	// Status, when set, serves GET /status.
	Status StatusSource
	// Metrics, when set, serves GET /metrics.
	Metrics MetricsWriter
	// Logger receives the server's errors (default: a null logger).
	Logger hclog.Logger
}

// Server serves /healthz, /livez, /readyz, /status and /metrics. It is safe for concurrent use.
type Server struct {
	cfg      Config
	srv      *fasthttp.Server
	shutdown atomic.Bool

	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// Timeouts of the admin listener: probes are short requests.
const (
	readTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
	idleTimeout  = 30 * time.Second
)

// New returns a Server that will serve on ln.
func New(ln net.Listener, cfg Config) *Server {
	if cfg.ReadyMin < 1 {
		cfg.ReadyMin = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Server{cfg: cfg, ln: ln, done: make(chan struct{})}
	s.srv = &fasthttp.Server{
		Handler:               s.serve,
		NoDefaultServerHeader: true,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		MaxRequestBodySize:    4 << 10,
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
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch string(ctx.Path()) {
	case "/healthz", "/livez":
		ctx.SetBodyString("ok\n")
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

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	ready := s.cfg.Workers.ReadyWorkers()
	var reason string
	switch {
	case s.shutdown.Load():
		reason = "shutting down"
	case ready < s.cfg.ReadyMin:
		reason = fmt.Sprintf("%d of the %d workers needed are ready", ready, s.cfg.ReadyMin)
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
	ctx.SetBodyString(reason + "\n")
}
