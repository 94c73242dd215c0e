package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// ServerConfig configures the public listener's HTTP server.
type ServerConfig struct {
	// IdleTimeout closes a client's keep-alive connection after this long
	// without a request (default 75s, above common load-balancer idle
	// timeouts of 60s so the edge closes first).
	IdleTimeout time.Duration
	// HeaderBufferSize bounds a request's header block (default 16KiB, as
	// Node's --max-http-header-size).
	HeaderBufferSize int
	// BodyBufferSize is the largest request body read whole before the
	// request is forwarded; larger bodies stream to the worker (default 64KiB).
	// It is not a limit on body size.
	BodyBufferSize int
}

// Defaults for ServerConfig.
const (
	DefaultIdleTimeout    = 75 * time.Second
	DefaultBodyBufferSize = 64 << 10
)

// NewServer returns the fasthttp server for the public listener.
func NewServer(h *Handler, cfg ServerConfig, log hclog.Logger) *fasthttp.Server {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HeaderBufferSize <= 0 {
		cfg.HeaderBufferSize = DefaultHeaderBufferSize
	}
	if cfg.BodyBufferSize <= 0 {
		cfg.BodyBufferSize = DefaultBodyBufferSize
	}
	return &fasthttp.Server{
		Handler:                      h.ServeHTTP,
		Name:                         "",
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadBufferSize:               cfg.HeaderBufferSize,
		MaxRequestBodySize:           cfg.BodyBufferSize,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{log},
	}
}

// fasthttpLogger routes fasthttp's own messages to hclog.
type fasthttpLogger struct{ log hclog.Logger }

// Printf implements fasthttp.Logger.
func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

// Listener is a net.Listener whose Close may be called more than once:
// percore closes it to stop accepting before fasthttp's Shutdown closes it
// again.
type Listener struct {
	net.Listener
	once sync.Once
	err  error
}

// Close implements net.Listener.
func (l *Listener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// Serve runs srv on ln until Shutdown; it is the proxy's run.Group actor.
// Stop stops accepting at once, then waits until open requests are done or
// ctx ends; Serve returns only after that.
type Serve struct {
	srv  *fasthttp.Server
	ln   *Listener
	done chan struct{}
	once sync.Once
}

// NewServe returns a Serve for srv on ln.
func NewServe(srv *fasthttp.Server, ln net.Listener) *Serve {
	return &Serve{srv: srv, ln: &Listener{Listener: ln}, done: make(chan struct{})}
}

// Run serves until Stop has finished.
func (s *Serve) Run() error {
	err := s.srv.Serve(s.ln)
	<-s.done
	return err
}

// Stop closes the listener at once, then waits for in-flight requests
// until ctx ends. Idle keep-alive connections are closed; busy ones get
// "Connection: close" on their response.
func (s *Serve) Stop(ctx context.Context) {
	s.once.Do(func() {
		defer close(s.done)
		_ = s.ln.Close() // Serve reports the listener's fate
		_ = s.srv.ShutdownWithContext(ctx)
	})
}
