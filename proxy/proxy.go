package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// http11 is the protocol of every response percore sends.
var http11 = []byte("HTTP/1.1")

// maxAttempts bounds how many workers one request is tried on.
const maxAttempts = 4

// DefaultWorkerWait is how long a request waits for a ready worker when none
// is ready, before it gets 503.
const DefaultWorkerWait = 10 * time.Second

// DefaultResponseTimeout is how long a worker may take to send the status
// and header of its response once the request is written. It catches a hung
// worker, and it is longer than the timeouts of the usual edges (nginx and
// AWS load balancers 60s, Cloudflare 100s), so that a slow answer or a long
// poll behind them is cut by the edge, not by percore. Once the header is in,
// the body may stream for as long as it takes.
const DefaultResponseTimeout = 2 * time.Minute

// DefaultBodyTimeout is how long a client may go without sending any of a
// request body it has started, as nginx's client_body_timeout: ample for a
// slow link, short enough that a stalled upload does not hold a worker's
// request open for good.
const DefaultBodyTimeout = 60 * time.Second

// flushHeadersAbove is the size above which a response's header is sent
// ahead of its body: a body that fits the write buffer goes out with the
// header in one write, a larger or unknown-length body (an event stream)
// lets the client see the header at once and each piece as it comes.
const flushHeadersAbove = 4 << 10

// Config configures a Handler. Zero values mean the defaults.
type Config struct {
	// Pool is where requests go. Required. New sets its per-worker limit and
	// upstream response timeout, which apply to workers added afterwards:
	// call New before the supervisor adds any.
	Pool *Pool
	// Logger receives upstream failures (default: a null logger).
	Logger hclog.Logger
	// AccessLog, when set, gets one line per request when its response ends:
	// method, path, status, bytes, duration, worker and request id (default:
	// none).
	AccessLog hclog.Logger
	// WorkerWait is how long a request waits for a ready worker (default 10s).
	WorkerWait time.Duration
	// Trusted are the peers whose forwarding headers (X-Forwarded-*,
	// Forwarded, X-Real-IP, ...) are kept; every other peer's are removed
	// (default DefaultTrusted, loopback; an empty non-nil list trusts nobody).
	Trusted Trusted
	// MaxBody limits request bodies in bytes (default: no limit). A larger
	// Content-Length gets 413 at once; a chunked body is cut when it grows
	// past the limit, the worker sees the request end early and the client
	// gets 413.
	MaxBody int64
	// MaxInFlight limits the requests each worker serves at once (default:
	// no limit). A streamed response holds its slot until it ends; an open
	// tunnel (WebSocket) does not hold one.
	MaxInFlight int
	// Queue is how many requests may wait for a slot when every worker is at
	// MaxInFlight (default 100; negative: none, answer 503 at once). A
	// request finding the queue full gets 503.
	Queue int
	// QueueTimeout is how long a request waits in the queue before 503
	// (default 10s).
	QueueTimeout time.Duration
	// BodyTimeout is how long a client may go without sending any of a
	// request body it has started; the request then ends with 408, and the
	// worker sees its request cut short (default 60s, nginx's
	// client_body_timeout; negative: none).
	BodyTimeout time.Duration
	// ResponseTimeout bounds the wait for a worker's response header after
	// the request is written; it ends in 504 (default 2m; negative: none).
	ResponseTimeout time.Duration
	// MaxRequests, when above zero, recycles a worker after that many
	// requests plus up to MaxRequestsJitter more: OnMaxRequests is called
	// once with its key (gunicorn's max_requests).
	MaxRequests       int
	MaxRequestsJitter int
	OnMaxRequests     func(key uint64)
	// Affinity pins clients to worker slots (default off). engine.io
	// sessions are followed whatever it is.
	Affinity Affinity
	// EnginePath is the path prefix of engine.io (socket.io) requests,
	// whose sessions go to the worker that opened them (default
	// DefaultEnginePath; "off": sessions are not followed).
	EnginePath string
	// SessionRate caps the engine.io sessions one client address (an IPv6
	// one by its /64, resolved through Trusted; loopback ones are not
	// capped) may open a second (default DefaultSessionRate; negative: no
	// cap). A handshake over the cap is not forwarded: it gets 429 with
	// Retry-After.
	SessionRate int
	// SessionBurst is how many sessions a client may open at once before
	// the rate applies (default twice SessionRate).
	SessionBurst int
}

// Handler forwards requests to workers, and tunnels upgraded connections
// (WebSocket) to them. It is safe for concurrent use.
type Handler struct {
	pool        *Pool
	log         hclog.Logger
	access      hclog.Logger // nil when the access log is off
	wait        time.Duration
	trusted     Trusted
	maxBody     int64
	respTimeout time.Duration // 0: none
	bodyTimeout time.Duration // 0: none
	ids         *requestIDs
	tunnels     *tunnelSet
	streams     *streamSet   // close-delimited responses to HTTP/1.0 clients
	pol         *policy      // the pool's, fixed by New
	sessionRate *sessionRate // nil: no cap on new engine.io sessions
}

// New returns a Handler.
func New(cfg Config) *Handler {
	h := &Handler{pool: cfg.Pool, log: cfg.Logger, access: cfg.AccessLog, wait: cfg.WorkerWait,
		trusted: cfg.Trusted, maxBody: cfg.MaxBody, ids: newRequestIDs(), tunnels: newTunnelSet(), streams: newStreamSet()}
	if h.log == nil {
		h.log = hclog.NewNullLogger()
	}
	if h.wait <= 0 {
		h.wait = DefaultWorkerWait
	}
	if h.trusted == nil {
		h.trusted = DefaultTrusted()
	}
	switch {
	case cfg.BodyTimeout == 0:
		h.bodyTimeout = DefaultBodyTimeout
	case cfg.BodyTimeout > 0:
		h.bodyTimeout = cfg.BodyTimeout
	}
	switch {
	case cfg.ResponseTimeout == 0:
		h.respTimeout = DefaultResponseTimeout
	case cfg.ResponseTimeout > 0:
		h.respTimeout = cfg.ResponseTimeout
	}
	var lim *limit
	if cfg.MaxInFlight > 0 {
		lim = &limit{max: int64(cfg.MaxInFlight), size: cfg.Queue, timeout: cfg.QueueTimeout}
		if cfg.Queue == 0 {
			lim.size = DefaultQueue
		} else if cfg.Queue < 0 {
			lim.size = 0
		}
		if lim.timeout <= 0 {
			lim.timeout = DefaultQueueTimeout
		}
	}
	engine := cfg.EnginePath
	switch engine {
	case "":
		engine = DefaultEnginePath
	case "off":
		engine = ""
	}
	h.pol = newPolicy(cfg.Affinity, engine)
	if rate := cfg.SessionRate; rate >= 0 && engine != "" {
		if rate == 0 {
			rate = DefaultSessionRate
		}
		burst := cfg.SessionBurst
		if burst <= 0 {
			burst = 2 * rate
		}
		h.sessionRate = newSessionRate(rate, burst, maxRatePeers)
	}
	h.pool.configure(lim, h.respTimeout, h.pol)
	h.pool.SetMaxRequests(cfg.MaxRequests, cfg.MaxRequestsJitter, cfg.OnMaxRequests)
	return h
}

// CloseTunnels closes every open tunnel now. Serve does it at the end of a
// stop's deadline.
func (h *Handler) CloseTunnels() { h.tunnels.closeAll() }

// Tunnels reports how many tunnels are open.
func (h *Handler) Tunnels() int { return h.tunnels.count() }

// ServeHTTP is the fasthttp request handler. It retains nothing of ctx after
// it returns, except through the response body stream that fasthttp closes
// when the response is written, and the hijacked connection of a tunnel.
func (h *Handler) ServeHTTP(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	if status, why := checkRequest(&req.Header); status != 0 {
		h.refuse(ctx, status, why, nil)
		return
	}
	var idBuf [maxRequestIDLen]byte
	rid := h.requestID(&req.Header, idBuf[:0])
	var protoBuf [64]byte
	proto := upgradeProtocol(&req.Header, protoBuf[:0])

	var body *requestBody
	if cl := req.Header.ContentLength(); cl > 0 || cl == -1 {
		if h.maxBody > 0 && int64(cl) > h.maxBody {
			h.refuse(ctx, fasthttp.StatusRequestEntityTooLarge, "Content-Length over the body limit", rid)
			return
		}
		// The header timeout bounds reading the header only: the body may
		// take as long as the client takes to send it, as long as it never
		// goes quiet for the body timeout (each read sets its deadline).
		if h.bodyTimeout == 0 {
			_ = ctx.SetReadDeadline(time.Time{}) // fails only on a closed connection, which the body read reports
		}
		body = acquireRequestBody(ctx, req.BodyStream(), cl, h.maxBody, h.bodyTimeout)
		size := cl
		if cl == -1 {
			complete, err := body.readAhead()
			if err != nil {
				h.clientFailed(ctx, body, nil, rid)
				releaseRequestBody(body)
				return
			}
			if complete {
				size = len(body.ahead)
			}
		}
		req.SetBodyStream(body, size)
	}

	removeRequestHops(&req.Header, h.trusted.has(ctx.RemoteAddr()))
	req.Header.ResetConnectionClose()
	// The worker gets the Content-Type the client sent, or none: fasthttp
	// would otherwise add its default to a body without one.
	req.Header.SetNoDefaultContentType(true)
	http10 := !req.Header.IsHTTP11()
	if http10 {
		// A proxy sends its own HTTP version (RFC 9110 section 6.2), and
		// keeps its connection to the worker alive.
		req.Header.SetProtocol("HTTP/1.1")
	}
	if uri := req.Header.RequestURI(); len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		// An absolute-form target's authority replaces Host (RFC 9112
		// section 3.2.2); fasthttp writes it so, and X-Forwarded-Host agrees.
		req.Header.SetHostBytes(req.URI().Host())
	} else if len(req.Header.Host()) == 0 {
		setListenerHost(req, ctx.LocalAddr())
	}
	setForwarded(&req.Header, ctx.RemoteAddr(), h.trusted)
	var r route
	h.pol.pin(&r, req, ctx.RemoteAddr(), h.trusted)
	if r.handshake && !h.admitSession(ctx, rid) {
		if body != nil {
			// The body was not read: the connection cannot be reused.
			_ = req.CloseBodyStream()
			releaseRequestBody(body)
			ctx.SetConnectionClose()
		}
		return
	}
	if proto != nil {
		h.serveUpgrade(ctx, proto, rid, &r) // never with a body: see upgradeProtocol
		return
	}
	h.forward(ctx, body, rid, http10, &r)
	if body != nil {
		// The worker's client has read the whole body by now. Drop the
		// request's reference to it (it has no Close) and pool it.
		_ = req.CloseBodyStream()
		releaseRequestBody(body)
	}
}

// admitSession reports whether the client of an engine.io handshake may
// open a session now. When it is over its rate, the handshake gets 429
// with Retry-After, in whole seconds, and no worker sees it.
func (h *Handler) admitSession(ctx *fasthttp.RequestCtx, rid []byte) bool {
	if h.sessionRate == nil {
		return true
	}
	key, capped := h.sessionRate.clientKey(&ctx.Request.Header, ctx.RemoteAddr(), h.trusted)
	if !capped {
		return true
	}
	wait, ok := h.sessionRate.allow(key, time.Now())
	if ok {
		return true
	}
	h.pool.stats.refused.Add(1)
	if h.log.IsDebug() { // a flood of refusals formats nothing
		h.log.Debug("socket.io handshake refused: client over its session rate", "peer", ctx.RemoteAddr().String(),
			"retry_after", wait, "request_id", string(rid))
	}
	h.answer(ctx, fasthttp.StatusTooManyRequests, "429 Too Many Requests: too many new socket.io sessions from this address\n", rid, nil)
	var buf [20]byte
	ctx.Response.Header.SetBytesV("Retry-After", strconv.AppendInt(buf[:0], int64((wait+time.Second-1)/time.Second), 10))
	return false
}

// setListenerHost gives a request without Host (HTTP/1.0 allows that; an
// HTTP/1.1 one was refused) the address the client connected to, as nginx
// does with its server name: the worker's HTTP/1.1 requires a Host, and the
// listener's address is the name the client used.
func setListenerHost(req *fasthttp.Request, local net.Addr) {
	host := local.String()
	req.URI().SetHost(host) // fasthttp writes the parsed target's host
	req.Header.SetHost(host)
}

// expect answers "Expect: 100-continue" before fasthttp reads the body: a
// body announced over the limit gets 413 without being sent at all.
func (h *Handler) expect(ctx *fasthttp.RequestCtx) int {
	if h.maxBody > 0 && int64(ctx.Request.Header.ContentLength()) > h.maxBody {
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

// requestID returns the request's X-Request-Id, appended to dst: the
// client's when it is valid, else a new one, which the worker then gets.
func (h *Handler) requestID(hdr *fasthttp.RequestHeader, dst []byte) []byte {
	if v := hdr.Peek("X-Request-Id"); validRequestID(v) {
		return append(dst, v...)
	}
	dst = h.ids.appendNext(dst)
	hdr.SetBytesV("X-Request-Id", dst)
	return dst
}

// forward sends the request to a worker, retrying on another one what can
// be retried, and hands the response to the client.
func (h *Handler) forward(ctx *fasthttp.RequestCtx, body *requestBody, rid []byte, http10 bool, r *route) {
	req := &ctx.Request
	up := fasthttp.AcquireResponse()
	var tried triedSet
	var deadline time.Time
	var lastB *backend
	var lastErr error
	for attempt := 1; ; attempt++ {
		b, err := h.pool.acquire(&tried, r, &deadline, h.wait)
		if b == nil {
			fasthttp.ReleaseResponse(up)
			if lastB != nil {
				h.fail(ctx, lastB, lastErr, rid) // the last worker's failure, not "none ready"
				return
			}
			h.unavailable(ctx, err, rid)
			return
		}
		if (attempt > 1 || !deadline.IsZero()) && clientGone(ctx.Conn()) {
			// A retry, or a request that waited for a worker (a reload, a
			// crash): one whose client left is not sent, least of all to
			// a worker that did not see it yet.
			b.release()
			fasthttp.ReleaseResponse(up)
			h.abandoned(ctx, rid)
			return
		}
		h.pool.counted(b)
		err = b.client.Do(req, up)
		if err == nil {
			h.respond(ctx, b, up, rid, http10, r)
			return
		}
		b.release()
		if body != nil && body.failed() {
			fasthttp.ReleaseResponse(up)
			h.clientFailed(ctx, body, b, rid)
			return
		}
		if !workerFault(err) {
			fasthttp.ReleaseResponse(up)
			h.refuse(ctx, fasthttp.StatusBadRequest, "request percore cannot forward: "+err.Error(), rid)
			return
		}
		retry := attempt < maxAttempts && retryable(err, req)
		if h.pool.notice(b, err, retry) {
			h.log.Debug("worker down: its address refuses connections", "worker", b.slot, "addr", b.addr)
		}
		if !retry {
			fasthttp.ReleaseResponse(up)
			h.fail(ctx, b, err, rid)
			return
		}
		lastB, lastErr = b, err
		h.log.Debug("retrying on another worker", "worker", b.slot, "error", err)
		up.Reset()
		tried.add(b.key)
	}
}

// respond hands the worker's response to the client. The body streams
// through a bodyReader, which ends the in-flight count when fasthttp closes
// it after the last byte is written (or the client went away). A body of
// unknown length to an HTTP/1.0 client ends with the connection instead of
// the chunked coding (see untilClose).
func (h *Handler) respond(ctx *fasthttp.RequestCtx, b *backend, up *fasthttp.Response, rid []byte, http10 bool, r *route) {
	if cl := up.Header.ContentLength(); up.IsBodyStream() && cl >= 0 && cl <= flushHeadersAbove {
		if err := readSmallBody(up, &ctx.Response, cl); err != nil {
			// Nothing went to the client yet: a cut answer is a 502, not
			// an empty reply.
			fasthttp.ReleaseResponse(up)
			b.release()
			h.fail(ctx, b, err, rid)
			return
		}
	}
	b.succeeded()
	h.pool.stats.record(b.stats, up.StatusCode(), time.Since(ctx.Time()))
	resp := &ctx.Response
	up.Header.CopyTo(&resp.Header)
	// A proxy answers in its own HTTP version (RFC 9110 section 6.2): a
	// worker's HTTP/1.0 status line would otherwise go out above the
	// chunked framing percore gives a body of unknown length.
	resp.Header.SetProtocol(http11)
	removeHopByHop(&resp.Header)
	resp.Header.ResetConnectionClose()
	if refusedAsMalformed(&up.Header) {
		// The worker could not read the request and closes its own
		// connection: the client's closes too, as it would with the worker
		// served directly, since what follows on it cannot be trusted.
		resp.SetConnectionClose()
	}
	if up.IsBodyStream() && up.Header.ContentLength() == -1 && !http10 {
		// removeHopByHop dropped the Trailer field: announce again the
		// fields the worker announced; their values follow the body.
		for _, name := range up.Header.PeekTrailerKeys() {
			_ = resp.Header.AddTrailerBytes(name) // fasthttp refused the forbidden ones as it read them
		}
	}
	resp.Header.SetBytesV("X-Request-Id", rid)
	if r.cookie && r.slot != b.slot+1 {
		var buf [96]byte
		resp.Header.SetBytesV("Set-Cookie", appendSlotCookie(buf[:0], b.slot))
	}
	var scan *openScan
	if r.handshake && up.StatusCode() == fasthttp.StatusOK {
		if !up.IsBodyStream() {
			h.pol.sessions.learn(openSID(resp.Body()), b.key, time.Now())
		} else {
			scan = new(openScan) // only for handshakes, which open a session each
		}
	}
	var entry *accessEntry
	if h.access != nil {
		entry = h.newEntry(ctx, b, up.StatusCode(), rid)
	}
	if !up.IsBodyStream() {
		entry.write(int64(len(resp.Body())), nil)
		fasthttp.ReleaseResponse(up)
		b.release()
		return
	}
	br := bodyReaderPool.Get().(*bodyReader)
	br.up, br.b, br.r, br.out, br.entry = up, b, up.BodyStream(), &resp.Header, entry
	br.scan, br.sessions = scan, h.pol.sessions
	cl := up.Header.ContentLength()
	if cl < 0 && http10 {
		h.sendUntilClose(ctx, resp, br)
		return
	}
	resp.ImmediateHeaderFlush = cl < 0 || cl > flushHeadersAbove
	resp.SetBodyStream(br, cl)
}

// refusedAsMalformed reports a worker's answer to a request it could not
// read: a 400 that closes the worker's connection, as Node's parser answers
// an unknown or lower-case method.
func refusedAsMalformed(h *fasthttp.ResponseHeader) bool {
	return h.StatusCode() == fasthttp.StatusBadRequest && h.ConnectionClose()
}

// smallBodies are buffers for reading a small response body whole.
var smallBodies = sync.Pool{New: func() any { return new([flushHeadersAbove]byte) }}

// readSmallBody reads a response body of n bytes, n at most
// flushHeadersAbove, into resp's body, so that a worker that cuts it short
// is seen before anything is passed on. The upstream stream is closed.
func readSmallBody(up *fasthttp.Response, resp *fasthttp.Response, n int) error {
	buf := smallBodies.Get().(*[flushHeadersAbove]byte)
	defer smallBodies.Put(buf)
	_, err := io.ReadFull(up.BodyStream(), buf[:n])
	// Closing the stream returns the connection, or drops it when the body
	// did not end at its framing.
	up.SetBodyRaw(nil)
	if err != nil {
		return err
	}
	resp.SetBody(buf[:n])
	return nil
}

// unavailable answers 503 when no worker could take the request. Shedding
// load at the limit is the limit working, so it is logged at debug level
// only; no worker being ready at all is a warning.
func (h *Handler) unavailable(ctx *fasthttp.RequestCtx, err error, rid []byte) {
	if errors.Is(err, ErrQueueFull) || errors.Is(err, ErrQueueTimeout) {
		h.log.Debug("request not served", "reason", err, "request_id", string(rid))
		h.answer(ctx, fasthttp.StatusServiceUnavailable, "503 Service Unavailable: every worker is busy\n", rid, nil)
		return
	}
	h.log.Warn("request not served", "reason", err, "path", string(ctx.Path()), "request_id", string(rid))
	h.answer(ctx, fasthttp.StatusServiceUnavailable, "503 Service Unavailable: no worker is ready\n", rid, nil)
}

// fail answers 502, or 504 on a timeout, with a generic body; the detail
// goes to the log only.
func (h *Handler) fail(ctx *fasthttp.RequestCtx, b *backend, err error, rid []byte) {
	status := fasthttp.StatusBadGateway
	if isTimeout(err) {
		status = fasthttp.StatusGatewayTimeout
	}
	h.log.Warn("upstream request failed", "worker", b.slot, "addr", b.addr, "status", status,
		"request_id", string(rid), "error", err)
	if h.pool.failed(b) {
		h.log.Warn("worker out of rotation after failed requests in a row", "worker", b.slot,
			"failures", EjectAfter, "for", min(time.Duration(b.ejections.Load())*EjectBase, EjectMax))
	}
	h.answer(ctx, status, fasthttp.StatusMessage(status)+"\n", rid, b)
}

// clientFailed answers a request whose body failed on the client's side:
// 413 when it outgrew the limit, 408 when the client stopped sending it for
// the body timeout, else 400 (broken chunked framing, or a
// client gone mid-upload, which will not read the answer). The connection
// closes, since the rest of the body cannot be told from a next request.
func (h *Handler) clientFailed(ctx *fasthttp.RequestCtx, body *requestBody, b *backend, rid []byte) {
	status := fasthttp.StatusBadRequest
	switch {
	case body.tooLarge:
		status = fasthttp.StatusRequestEntityTooLarge
	case body.stalled():
		status = fasthttp.StatusRequestTimeout
	}
	h.log.Debug("request body failed on the client's side", "status", status, "read", body.n,
		"request_id", string(rid), "error", body.err)
	h.answer(ctx, status, fasthttp.StatusMessage(status)+"\n", rid, b)
	ctx.SetConnectionClose()
}

// statusClientClosed is nginx's status for a request whose client left
// before its answer: it goes to the access log and metrics only.
const statusClientClosed = 499

// abandoned ends a request whose client left while it waited for a worker
// or a retry: it is not sent again.
func (h *Handler) abandoned(ctx *fasthttp.RequestCtx, rid []byte) {
	h.log.Debug("client left; request not sent again", "request_id", string(rid), "path", string(ctx.Path()))
	h.answer(ctx, statusClientClosed, "Client Closed Request\n", rid, nil)
	ctx.SetConnectionClose()
}

// refuse answers a request that is not forwarded at all, and closes the
// connection: after a malformed request the stream cannot be trusted. A
// refusal is the client's fault and counts with the 4xx answers, even the
// 505 of an HTTP version percore does not speak (RFC 9110 section 15.6.6
// names that status, but the request is at fault, not percore or a worker).
func (h *Handler) refuse(ctx *fasthttp.RequestCtx, status int, why string, rid []byte) {
	h.log.Debug("request refused", "status", status, "reason", why, "peer", ctx.RemoteAddr().String())
	counted := status
	if counted >= 500 {
		counted = fasthttp.StatusBadRequest
	}
	h.answerAs(ctx, status, counted, fasthttp.StatusMessage(status)+"\n", rid, nil)
	ctx.SetConnectionClose()
}

// answer replaces the response with a short one of percore's own.
func (h *Handler) answer(ctx *fasthttp.RequestCtx, status int, body string, rid []byte, b *backend) {
	h.answerAs(ctx, status, status, body, rid, b)
}

// answerAs is answer with the status the metrics count the answer as,
// which may differ from the one the client and the access log get.
func (h *Handler) answerAs(ctx *fasthttp.RequestCtx, status, counted int, body string, rid []byte, b *backend) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(body)
	if len(rid) > 0 {
		ctx.Response.Header.SetBytesV("X-Request-Id", rid)
	}
	var st *slotStats
	if b != nil {
		st = b.stats
	}
	h.pool.stats.record(st, counted, time.Since(ctx.Time()))
	if h.access != nil {
		h.newEntry(ctx, b, status, rid).write(int64(len(body)), nil)
	}
}

// retryable tells whether a failed request may go to another worker: always
// when the connection could not be made (nothing was sent), and for an
// idempotent request without a body when a reused keep-alive connection
// failed before any response byte arrived (the worker closed it meanwhile),
// or brought an answer that was not the request's.
func retryable(err error, req *fasthttp.Request) bool {
	if isDialError(err) {
		return true
	}
	if !idempotent(req) || hasBody(req) {
		return false
	}
	return errors.Is(err, errUnproven) || lostConnection(err)
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

// isTimeout reports a deadline that ran out: fasthttp's own timeout, or a
// connection's read or write deadline.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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
	up    *fasthttp.Response
	b     *backend
	r     io.Reader                // up's body stream
	out   *fasthttp.ResponseHeader // the client's, for the trailer fields; nil: none
	n     int64
	entry *accessEntry // nil when the access log is off

	scan     *openScan // looks for an engine.io session opened by the body; nil: none
	sessions *sessions // where scan's session is learned
}

var bodyReaderPool = sync.Pool{New: func() any { return new(bodyReader) }}

// Read implements io.Reader.
func (br *bodyReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	br.n += int64(n)
	if br.scan != nil && n > 0 {
		if sid := br.scan.feed(p[:n]); sid != nil {
			br.sessions.learn(sid, br.b.key, time.Now())
		}
	}
	if err == io.EOF && br.out != nil {
		// fasthttp writes the trailer section after the last chunk.
		if t, ok := br.r.(trailerSource); ok {
			t.copyTrailers(br.out)
		}
	}
	return n, err
}

// CloseWithError implements fasthttp.ReadCloserWithError. Releasing the
// upstream response closes its body stream, which returns the connection to
// the pool only when the body was read to its end: when the client went
// away mid-body, the worker sees the request end.
func (br *bodyReader) CloseWithError(err error) error {
	br.entry.write(br.n, err)
	fasthttp.ReleaseResponse(br.up)
	br.b.release()
	*br = bodyReader{}
	bodyReaderPool.Put(br)
	return nil
}
