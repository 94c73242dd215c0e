package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// errBadStatus is a worker's answer with a status outside 100-599, or a
// 101 to a request that asked for no upgrade: a malformed answer, which the
// client gets as 502.
var errBadStatus = errors.New("malformed response status")

// transport is the fasthttp.RoundTripper of the upstream clients. A
// connection to a worker carries the responses of many clients one after
// another, so whatever a worker writes beyond the framing of a response must
// never be read as the answer to the next request: Node lets an app write
// more than its Content-Length, or write after a response has ended, and no
// look at a connection before reusing it can see bytes that arrive after the
// look. The transport therefore proves each answer, rather than guess:
//
//   - every request carries a token of its own, fresh and random, in the
//     X-Percore-Token field; the runtime's preload takes it out of the
//     request the app sees and puts it into the head of the answer (see
//     jsruntime). An answer whose token is the request's is that request's
//     answer; percore removes the field before the client sees it;
//   - a connection goes back to the pool only after an answer that carried
//     its request's token and ended at its framing with nothing more
//     buffered, so a worker that echoes no token (a runtime without the
//     preload, a wrapper that dropped it) gets a connection of its own for
//     every request: slower, never wrong;
//   - on a reused connection, an answer without its request's token is
//     never delivered: the connection is closed, the worker named in the
//     log, and a request that may be sent again (idempotent, no body) is
//     sent again on another connection;
//   - a reused connection the worker closes or resets before any answer
//     (it closed it while the request was on its way, or its preload
//     refused an answer the app wrote to the socket itself, which carries
//     no token) sends a request that may be sent again once more on a new
//     connection of the same worker, where the first answer is the
//     request's whatever it is: an answer that had begun there reaches the
//     client, cut short if the worker cuts it, rather than a 502;
//   - a response body is read exactly to its framing (Content-Length,
//     chunked, or the end of the connection), so the client gets the framed
//     bytes and nothing more;
//   - statuses outside 100-599 and an unsolicited 101 are refused, and
//     interim (1xx) responses skipped.
//
// The first answer on a new connection needs no token to be delivered: no
// earlier answer could have left bytes on it.
//
// The body is a stream the caller must close through the Response (which
// fasthttp does when it resets or releases it); closing it returns or
// discards the connection. The response header timeout is the client's
// ReadTimeout; it is lifted once the header is in, so that a body may
// stream for as long as it takes.
//
// There is one transport per worker.
type transport struct {
	unproven atomic.Int64 // answers on a reused connection without their token
	log      hclog.Logger // gets a warning for the first of them
}

// TokenHeader is the request and response field that carries a request's
// token between percore and a worker's preload.
const TokenHeader = "X-Percore-Token"

// tokenLen is the length of a token: 64 random bits in hex.
const tokenLen = 16

// maxTries bounds how often one request is sent to a worker, after answers
// that were not its own or reused connections lost before any answer; each
// try closes the connection it used.
const maxTries = 3

// errUnproven is an answer on a reused connection that did not carry its
// request's token: bytes the worker wrote outside a response's framing,
// which must reach no client.
var errUnproven = errors.New("answer without its request's token on a reused connection")

// newTransport returns the transport of one worker; log may be nil.
func newTransport(log hclog.Logger) *transport {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &transport{log: log}
}

// noteUnproven counts an answer that was not its request's and warns about
// the first one.
func (t *transport) noteUnproven(got []byte) {
	if t.unproven.Add(1) != 1 {
		t.log.Debug("dropped an answer that was not its request's", "token_seen", len(got) > 0)
		return
	}
	t.log.Warn("worker answered on a kept-alive connection with bytes that were not its request's answer "+
		"(written after a response ended, or past its Content-Length); they were dropped, never delivered, "+
		"and the connection closed (check the app's Content-Length, and writes after a response ended)",
		"token_seen", len(got) > 0)
}

// newToken fills tok with a fresh random token.
func newToken(tok *[tokenLen]byte) {
	const digits = "0123456789abcdef"
	v := rand.Uint64()
	for i := range tok {
		tok[i] = digits[v&0xf]
		v >>= 4
	}
}

// RoundTrip implements fasthttp.RoundTripper. It never asks fasthttp to
// retry: the handler retries on another worker itself. It sends a request
// that may be sent again (idempotent, no body) again to the same worker
// only after an answer that was not the request's, or after a reused
// connection was lost before any answer, then on a new connection.
func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	var tok [tokenLen]byte
	// A client's own field of that name must not reach the worker beside
	// percore's, which would then echo both.
	req.Header.Del(TokenHeader)
	fresh := false
	again := idempotent(req) && !hasBody(req)
	for try := 1; ; try++ {
		newToken(&tok)
		req.Header.SetCanonical([]byte(TokenHeader), tok[:])
		reused, err := t.roundTrip(hc, req, resp, tok[:], fresh, !again || try >= maxTries)
		if err == nil || !again || try >= maxTries {
			return false, err
		}
		switch {
		case err == errUnproven:
		case reused && lostBeforeAnswer(err):
			fresh = true
		default:
			return false, err
		}
		resp.Reset()
	}
}

// lostBeforeAnswer reports a connection the worker closed or reset before
// a byte of the answer arrived: fasthttp reads a head from a connection
// closed at its start as io.EOF itself (a head cut short is another error).
func lostBeforeAnswer(err error) bool {
	return err == io.EOF || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip sends req once and reads the head of its answer into resp. It
// reports whether the connection it used had carried an answer before;
// fresh asks for a connection that has not. look asks to look at a pooled
// connection before using it, for a request that cannot be sent again: a
// connection the worker closed meanwhile, or one holding bytes no request
// asked for, is then closed and another taken. A request that can be sent
// again spares that system call: such a connection fails it before any
// answer, or gives it an answer without its token, and it goes again.
func (t *transport) roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, tok []byte, fresh, look bool) (bool, error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	// A pooled connection has a last use; a new one has none and cannot
	// hold anything yet. Each discarded connection leaves the pool, so this
	// ends at a fresh dial at the latest.
	for err == nil && !cc.LastUseTime().IsZero() && (fresh || (look && connPeek(cc.Conn()) != peekIdle)) {
		hc.CloseConn(cc)
		cc, err = hc.AcquireConn(0, req.ConnectionClose())
	}
	if err != nil {
		return false, err
	}
	reused := !cc.LastUseTime().IsZero()
	conn := cc.Conn()
	if err := writeRequest(hc, conn, req); err != nil {
		hc.CloseConn(cc)
		return reused, err
	}
	br := hc.AcquireReader(conn)
	if err := readHead(hc, conn, br, req, resp); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return reused, err
	}
	proven, err := t.prove(resp, tok, reused)
	if err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return reused, err
	}
	keep := proven && !req.ConnectionClose() && !resp.Header.ConnectionClose()
	cl := resp.Header.ContentLength()
	if bodiless(req, resp) || cl == 0 {
		clean := br.Buffered() == 0
		hc.ReleaseReader(br)
		if keep && clean {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		return reused, nil
	}
	body := acquireUpstreamBody(t, hc, cc, (*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn)
	body.start(br, cl, keep)
	resp.SetBodyStream(body, cl)
	return reused, nil
}

// prove checks the token in an answer's head and removes it. It reports
// whether the answer carried its request's token; an answer on a reused
// connection that did not is errUnproven, and so is one whose token is
// another's.
func (t *transport) prove(resp *fasthttp.Response, tok []byte, reused bool) (bool, error) {
	got := resp.Header.Peek(TokenHeader)
	if len(got) == 0 {
		if reused {
			t.noteUnproven(got)
			return false, errUnproven
		}
		return false, nil
	}
	if !bytes.Equal(got, tok) {
		t.noteUnproven(got)
		return false, errUnproven
	}
	resp.Header.Del(TokenHeader)
	return true, nil
}

// writeRequest writes req to conn, whose next use must be to read the
// answer (or to close it): its last bytes may leave with that read.
func writeRequest(hc *fasthttp.HostClient, conn net.Conn, req *fasthttp.Request) error {
	bw := hc.AcquireWriter(conn)
	err := req.Write(bw)
	if err == nil {
		err = flushBeforeRead(bw, conn)
	}
	hc.ReleaseWriter(bw)
	return err
}

// readHead reads the final response header from br into resp, within the
// client's ReadTimeout (when set), skipping interim responses.
func readHead(hc *fasthttp.HostClient, conn net.Conn, br *bufio.Reader, req *fasthttp.Request, resp *fasthttp.Response) error {
	if hc.ReadTimeout > 0 {
		if err := conn.SetReadDeadline(time.Now().Add(hc.ReadTimeout)); err != nil {
			return err
		}
	}
	// The client gets the Content-Type the worker sent, or none: fasthttp
	// would otherwise add its default to a response without one.
	resp.Header.SetNoDefaultContentType(true)
	for n := 0; ; n++ {
		if err := readHeader(&resp.Header, br); err != nil {
			return err
		}
		code := resp.Header.StatusCode()
		if code < 100 || code > 599 {
			return fmt.Errorf("read response: status %d: %w", code, errBadStatus)
		}
		if code == fasthttp.StatusSwitchingProtocols && len(req.Header.Peek("Upgrade")) == 0 {
			return fmt.Errorf("read response: 101 to a request without Upgrade: %w", errBadStatus)
		}
		if code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			break
		}
		// An interim response (100 Continue, 103 Early Hints): the final
		// one follows on the same connection.
		if n >= maxInterim {
			return fmt.Errorf("read response: more than %d interim responses: %w", maxInterim, errBadStatus)
		}
	}
	if hc.ReadTimeout > 0 {
		return conn.SetReadDeadline(time.Time{})
	}
	return nil
}

// readHeader reads one response header. fasthttp refuses a whole header whose
// Trailer field names a field not allowed in a trailer section (Set-Cookie,
// Content-Length, ...); such a header is read again without its Trailer
// lines, and those fields are dropped when they arrive (see
// upstreamBody.copyTrailers), so that the response is relayed whole.
func readHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	err := h.Read(br)
	if err == nil || !errors.Is(err, fasthttp.ErrBadTrailer) {
		return err
	}
	// fasthttp parses only a complete header block, so it is all buffered.
	buf, _ := br.Peek(br.Buffered())
	end := headEnd(buf)
	if end < 0 {
		return err
	}
	clean := make([]byte, 0, end)
	for rest := buf[:end]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		if i == 0 {
			i = len(rest)
		}
		line := rest[:i]
		rest = rest[i:]
		if len(line) < len("Trailer:") || !bytes.EqualFold(line[:len("Trailer:")], []byte("Trailer:")) {
			clean = append(clean, line...)
		}
	}
	h.Reset()
	h.SetNoDefaultContentType(true)
	if err := h.Read(bufio.NewReaderSize(bytes.NewReader(clean), len(clean)+16)); err != nil {
		return err
	}
	_, err = br.Discard(end)
	return err
}

// headEnd returns the length of the header block at the start of b,
// through its empty line, or -1.
func headEnd(b []byte) int {
	for i, first := 0, true; i < len(b); first = false {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		line := b[i : i+j]
		i += j + 1
		if !first && (len(line) == 0 || (len(line) == 1 && line[0] == '\r')) {
			return i
		}
	}
	return -1
}

// bodiless reports whether resp has no body whatever its header says: the
// answer to HEAD, 204 and 304 (RFC 9112 section 6.3).
func bodiless(req *fasthttp.Request, resp *fasthttp.Response) bool {
	code := resp.Header.StatusCode()
	return req.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified ||
		code == fasthttp.StatusSwitchingProtocols
}
