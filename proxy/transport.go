package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
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
// more than its Content-Length, or write after a response has ended. The
// transport therefore
//
//   - reads a response body exactly to its framing (Content-Length, chunked,
//     or the end of the connection), so the client gets the framed bytes and
//     nothing more;
//   - gives a connection back to the pool only when the response ended at its
//     framing, its buffer holds nothing more, and neither side asked to close;
//   - checks a pooled connection before reusing it, and discards it if the
//     worker wrote to it or closed it meanwhile (nginx does the same with its
//     idle upstream connections), taking or dialing another one;
//   - refuses statuses outside 100-599 and an unsolicited 101, and skips
//     interim (1xx) responses;
//   - stops reusing the worker's connections for the rest of its life once
//     it has written outside a response's framing (bytes past a response's
//     end, or bytes on an idle connection). Bytes a worker writes late can
//     otherwise meet the next request on the connection, where no HTTP/1.1
//     client can tell them from that request's answer; after the first sign
//     of such a worker, every response has a connection of its own.
//
// The body is a stream the caller must close through the Response (which
// fasthttp does when it resets or releases it); closing it returns or
// discards the connection. The response header timeout is the client's
// ReadTimeout; it is lifted once the header is in, so that a body may
// stream for as long as it takes.
//
// There is one transport per worker.
type transport struct {
	stray atomic.Bool  // the worker wrote outside a response's framing
	log   hclog.Logger // gets one warning when stray is set
}

// newTransport returns the transport of one worker; log may be nil.
func newTransport(log hclog.Logger) *transport {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &transport{log: log}
}

// markStray notes that the worker wrote bytes no request asked for: from now
// on no connection to it is reused, and the idle ones, which may hold more
// such bytes, are closed.
func (t *transport) markStray(hc *fasthttp.HostClient, what string) {
	if t.stray.Swap(true) {
		return
	}
	t.log.Warn("worker wrote outside its responses' framing: its connections are no longer reused, "+
		"so that those bytes never reach another client (check the app's Content-Length, and writes after a response ended)",
		"seen", what)
	hc.CloseIdleConnections()
}

// reuse reports whether a connection whose response ended cleanly may go
// back to the pool.
func (t *transport) reuse() bool { return !t.stray.Load() }

// RoundTrip implements fasthttp.RoundTripper. It never asks fasthttp to
// retry: the handler retries on another worker itself.
func (t *transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	// A pooled connection has a last use; a new one has none and cannot
	// hold anything yet. Each discarded connection leaves the pool, so this
	// ends at a fresh dial at the latest.
	for err == nil && !cc.LastUseTime().IsZero() {
		state := connPeek(cc.Conn())
		if state == peekIdle {
			break
		}
		if state == peekData {
			t.markStray(hc, "bytes on an idle connection")
		}
		hc.CloseConn(cc)
		cc, err = hc.AcquireConn(0, req.ConnectionClose())
	}
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	if err := writeRequest(hc, conn, req); err != nil {
		hc.CloseConn(cc)
		return false, err
	}
	br := hc.AcquireReader(conn)
	if err := readHead(hc, conn, br, req, resp); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return false, err
	}
	keep := !req.ConnectionClose() && !resp.Header.ConnectionClose()
	cl := resp.Header.ContentLength()
	if bodiless(req, resp) || cl == 0 {
		clean := br.Buffered() == 0
		hc.ReleaseReader(br)
		if !clean {
			t.markStray(hc, "bytes past the end of a response")
		}
		if keep && clean && t.reuse() {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
		return false, nil
	}
	body := acquireUpstreamBody(t, hc, cc, (*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn)
	body.start(br, cl, keep)
	resp.SetBodyStream(body, cl)
	return false, nil
}

// writeRequest writes req to conn.
func writeRequest(hc *fasthttp.HostClient, conn net.Conn, req *fasthttp.Request) error {
	bw := hc.AcquireWriter(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
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
