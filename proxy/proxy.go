package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// maxAttempts bounds how many workers one request is tried on.
const maxAttempts = 4

// DefaultWorkerWait is how long a request waits for a ready worker when none
// is ready, before it gets 503.
const DefaultWorkerWait = 10 * time.Second

// Config configures a Handler.
type Config struct {
	// Pool is where requests go. Required.
	Pool *Pool
	// Logger receives upstream failures (default: a null logger).
	Logger hclog.Logger
	// WorkerWait is how long a request waits for a ready worker (default 10s).
	WorkerWait time.Duration
	// Trusted are the peers whose X-Forwarded-* headers are kept (default
	// DefaultTrusted; an empty non-nil list trusts nobody).
	Trusted Trusted
}

// Handler forwards requests to workers. It is safe for concurrent use.
type Handler struct {
	pool    *Pool
	log     hclog.Logger
	wait    time.Duration
	trusted Trusted
}

// New returns a Handler.
func New(cfg Config) *Handler {
	h := &Handler{pool: cfg.Pool, log: cfg.Logger, wait: cfg.WorkerWait, trusted: cfg.Trusted}
	if h.log == nil {
		h.log = hclog.NewNullLogger()
	}
	if h.wait <= 0 {
		h.wait = DefaultWorkerWait
	}
	if h.trusted == nil {
		h.trusted = DefaultTrusted()
	}
	return h
}

// ServeHTTP is the fasthttp request handler. It retains nothing of ctx after
// it returns, except through the response body stream that fasthttp closes
// when the response is written.
func (h *Handler) ServeHTTP(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	removeHopByHop(&req.Header)
	req.Header.ResetConnectionClose()
	setForwarded(&req.Header, ctx.RemoteAddr(), h.trusted)

	up := fasthttp.AcquireResponse()
	var tried triedSet
	deadline := time.Time{}
	for attempt := 1; ; attempt++ {
		b := h.pool.pick(&tried)
		if b == nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(h.wait)
			}
			if b = h.pool.waitForWorker(&tried, deadline); b == nil {
				fasthttp.ReleaseResponse(up)
				h.unavailable(ctx)
				return
			}
		}
		b.requests.Add(1)
		err := b.client.Do(req, up)
		if err == nil {
			h.respond(ctx, b, up)
			return
		}
		b.release()
		if attempt >= maxAttempts || !retryable(err, req) {
			fasthttp.ReleaseResponse(up)
			h.fail(ctx, b, err)
			return
		}
		h.log.Debug("retrying on another worker", "worker", b.slot, "error", err)
		up.Reset()
		tried.add(b.key)
	}
}

// respond hands the worker's response to the client. The body streams
// through a bodyReader, which ends the in-flight count when fasthttp closes
// it after the last byte is written (or the client went away).
func (h *Handler) respond(ctx *fasthttp.RequestCtx, b *backend, up *fasthttp.Response) {
	resp := &ctx.Response
	up.Header.CopyTo(&resp.Header)
	removeHopByHop(&resp.Header)
	resp.Header.ResetConnectionClose()
	if !up.IsBodyStream() {
		fasthttp.ReleaseResponse(up)
		b.release()
		return
	}
	br := bodyReaderPool.Get().(*bodyReader)
	br.up, br.b, br.r = up, b, up.BodyStream()
	resp.SetBodyStream(br, up.Header.ContentLength())
}

func (h *Handler) unavailable(ctx *fasthttp.RequestCtx) {
	h.log.Warn("no worker ready in time", "wait", h.wait, "path", string(ctx.Path()))
	ctx.Response.Reset()
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.SetBodyString("503 Service Unavailable: no worker is ready\n")
}

// fail answers 502, or 504 on a timeout, with a generic body; the detail
// goes to the log only.
func (h *Handler) fail(ctx *fasthttp.RequestCtx, b *backend, err error) {
	status := fasthttp.StatusBadGateway
	if errors.Is(err, fasthttp.ErrTimeout) {
		status = fasthttp.StatusGatewayTimeout
	}
	h.log.Warn("upstream request failed", "worker", b.slot, "addr", b.addr, "status", status, "error", err)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetBodyString(fasthttp.StatusMessage(status) + "\n")
}

// retryable tells whether a failed request may go to another worker: always
// when the connection could not be made (nothing was sent), and for an
// idempotent request without a body when a reused keep-alive connection
// failed before any response byte arrived (the worker closed it meanwhile).
func retryable(err error, req *fasthttp.Request) bool {
	if isDialError(err) {
		return true
	}
	if !idempotent(req) || hasBody(req) {
		return false
	}
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// hasBody tells whether the request carries a body, which a first attempt
// may have consumed. It never reads a streamed body.
func hasBody(req *fasthttp.Request) bool {
	if cl := req.Header.ContentLength(); cl > 0 || cl == -1 {
		return true
	}
	return !req.IsBodyStream() && len(req.Body()) > 0
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, syscall.ECONNREFUSED)
}

// idempotent reports the methods RFC 9110 section 9.2.2 calls idempotent.
func idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

// bodyReader streams a worker's response body to the client and ends the
// request's in-flight count when fasthttp closes it. It implements only
// CloseWithError (not io.Closer), so fasthttp closes it exactly once.
type bodyReader struct {
	up *fasthttp.Response
	b  *backend
	r  io.Reader
}

var bodyReaderPool = sync.Pool{New: func() any { return new(bodyReader) }}

// Read implements io.Reader.
func (br *bodyReader) Read(p []byte) (int, error) { return br.r.Read(p) }

// CloseWithError implements fasthttp.ReadCloserWithError. A non-nil err
// (the client went away mid-body) discards the upstream connection instead
// of returning it to the pool.
func (br *bodyReader) CloseWithError(err error) error {
	if rc, ok := br.r.(fasthttp.ReadCloserWithError); ok {
		_ = rc.CloseWithError(err) // the connection is dropped on error; nothing to report
	}
	fasthttp.ReleaseResponse(br.up)
	br.b.release()
	*br = bodyReader{}
	bodyReaderPool.Put(br)
	return nil
}
