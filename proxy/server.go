package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// ServerConfig configures the public listener's HTTP server. Zero values
// mean the defaults.
type ServerConfig struct {
	// HeaderTimeout bounds the wait for a request's header: from the accept
	// of a new connection to the end of its first header, and from the first
	// byte of each later request on a keep-alive connection to the end of its
	// header (default 20s). It cuts slowloris clients that dribble headers.
	// It does not apply to bodies.
	HeaderTimeout time.Duration
	// IdleTimeout closes a client's keep-alive connection after this long
	// without a request (default 75s, above common load-balancer idle
	// timeouts of 60s so the edge closes first).
	IdleTimeout time.Duration
	// HeaderBufferSize bounds a request's header block, request line
	// included; a larger one gets 431 (default 16KiB, as Node's
	// --max-http-header-size). It is also the read buffer each busy client
	// connection holds, so it weighs on memory per connection.
	HeaderBufferSize int
	// BodyBufferSize caps what fasthttp reads of a request body before the
	// handler runs (default 64KiB; fasthttp v1.78.0 reads at most 8KiB
	// ahead); the rest streams to the worker. It is not a limit on body size
	// (see Config.MaxBody). That read-ahead must arrive within the body
	// timeout (Config.BodyTimeout; IdleTimeout when it is off) of the
	// header; after it, each read of the body waits up to the body timeout.
	BodyBufferSize int
}

// Defaults for ServerConfig.
const (
	// DefaultHeaderTimeout matches Apache mod_reqtimeout's first header
	// timeout: ample for a slow mobile link, short enough to shed slowloris.
	DefaultHeaderTimeout  = 20 * time.Second
	DefaultIdleTimeout    = 75 * time.Second
	DefaultBodyBufferSize = 64 << 10
)

// Server is the fasthttp server of the public listener, with the Handler
// whose tunnels it closes on a stop.
type Server struct {
	*fasthttp.Server
	h *Handler
}

// NewServer returns the server for the public listener.
func NewServer(h *Handler, cfg ServerConfig, log hclog.Logger) *Server {
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HeaderBufferSize <= 0 {
		cfg.HeaderBufferSize = DefaultHeaderBufferSize
	}
	if cfg.BodyBufferSize <= 0 {
		cfg.BodyBufferSize = DefaultBodyBufferSize
	}
	return &Server{h: h, Server: &fasthttp.Server{
		Handler:               h.ServeHTTP,
		HeaderReceived:        bodyDeadline{readAhead(h, cfg)}.config,
		ExpectHandler:         h.expect,
		ErrorHandler:          errorHandler{log}.serve,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		// fasthttp's ReadTimeout runs from the accept (or a keep-alive
		// request's first byte) to the end of the header; bodyDeadline
		// and the handler take over from there.
		ReadTimeout:                  cfg.HeaderTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadBufferSize:               cfg.HeaderBufferSize,
		MaxRequestBodySize:           cfg.BodyBufferSize,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
		Logger:                       fasthttpLogger{log},
	}}
}

// readAhead is the time a request with a body has to send what fasthttp
// reads of it before the handler runs.
func readAhead(h *Handler, cfg ServerConfig) time.Duration {
	if h.bodyTimeout > 0 {
		return h.bodyTimeout
	}
	return cfg.IdleTimeout
}

// bodyDeadline moves the read deadline of a request with a body once its
// header is in: fasthttp reads up to 8KiB of the body before the handler
// runs, and that must not be bound by the header timeout. The handler then
// moves the deadline with each read of the rest of the body. A request without a body
// keeps the header deadline, which no read meets any more.
type bodyDeadline struct{ readAhead time.Duration }

func (d bodyDeadline) config(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := h.ContentLength(); cl > 0 || cl == -1 {
		return fasthttp.RequestConfig{ReadTimeout: d.readAhead}
	}
	return fasthttp.RequestConfig{}
}

// errorHandler answers a request fasthttp could not read: 431 for a header
// over the buffer, 408 when the header timeout ran out, else 400. fasthttp
// closes the connection after it.
type errorHandler struct{ log hclog.Logger }

func (e errorHandler) serve(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case isTimeout(err):
		status = fasthttp.StatusRequestTimeout
	}
	e.log.Debug("unreadable request", "status", status, "peer", ctx.RemoteAddr().String(), "error", err)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(fasthttp.StatusMessage(status) + "\n")
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
// Close stops accepting at once; Stop also waits until open requests are
// done or ctx ends; Run returns only after that, and after the open tunnels.
type Serve struct {
	srv  *Server
	ln   *Listener
	done chan struct{}
	once sync.Once
	ctx  context.Context // the stop's; set before done closes
}

// NewServe returns a Serve for srv on ln.
func NewServe(srv *Server, ln net.Listener) *Serve {
	return &Serve{srv: srv, ln: &Listener{Listener: bareLFListener{rawIOListener{ln}}}, done: make(chan struct{})}
}

// Run serves until Stop has finished, then waits for the open tunnels to
// end; at the end of the stop's context it closes those left.
func (s *Serve) Run() error {
	err := s.srv.Serve(s.ln)
	<-s.done
	s.srv.h.streams.wait(s.ctx)
	s.srv.h.tunnels.wait(s.ctx)
	return err
}

// Close begins a stop and returns at once: the listener closes, open
// tunnels (WebSockets) stop holding their workers, so the workers can be
// asked to stop and close them themselves, and the pool is closed, so a
// request that finds no worker gets 503 at once. Stop calls it; call it
// first to stop the workers beside the proxy's drain.
func (s *Serve) Close() {
	_ = s.ln.Close() // Serve reports the listener's fate
	s.srv.h.tunnels.stop()
	s.srv.h.pool.Close()
}

// Stop closes as Close does, then waits for in-flight requests until ctx
// ends. Idle keep-alive connections are closed; busy ones get
// "Connection: close" on their response. Tunnels stay open; Run closes
// those left when ctx ends. Stop must not be given a ctx that never ends if
// tunnels may stay open.
func (s *Serve) Stop(ctx context.Context) {
	s.once.Do(func() {
		s.ctx = ctx
		defer close(s.done)
		s.Close()
		_ = s.srv.ShutdownWithContext(ctx)
	})
}
