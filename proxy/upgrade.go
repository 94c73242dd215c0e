package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// maxInterim bounds the informational (1xx) responses skipped before a
// worker's answer to an upgrade.
const maxInterim = 8

// maxRefusalBody bounds the body of a worker's refusal of an upgrade, which
// is read whole before it is relayed.
const maxRefusalBody = 1 << 20

// errHeadTooLarge is a worker's response head over the header buffer.
var errHeadTooLarge = errors.New("response head too large")

// upgradeProtocol returns, appended to dst, the protocols a request asks to
// switch to (RFC 9110 section 7.8), or nil when it asks for none: an
// HTTP/1.1 request whose Connection names "upgrade" and which has an Upgrade
// header. A request with a body is not upgraded (a server may ignore
// Upgrade); it is forwarded as a plain request, without the Upgrade header.
func upgradeProtocol(h *fasthttp.RequestHeader, dst []byte) []byte {
	up := h.Peek("Upgrade")
	if len(up) == 0 || !h.IsHTTP11() || !hasToken(h.Peek("Connection"), "upgrade") {
		return nil
	}
	if cl := h.ContentLength(); cl > 0 || cl == -1 {
		return nil
	}
	return append(dst, up...)
}

// serveUpgrade forwards an upgrade request to a worker over a connection of
// its own and relays the answer: a 101 turns the client's connection into a
// tunnel to the worker; a refusal is relayed as a plain response.
func (h *Handler) serveUpgrade(ctx *fasthttp.RequestCtx, proto, rid []byte, r *route) {
	req := &ctx.Request
	req.Header.Set("Connection", "Upgrade")
	req.Header.SetBytesV("Upgrade", proto)
	head := req.Header.Header()
	var tried triedSet
	var deadline time.Time
	for attempt := 1; ; attempt++ {
		b, err := h.pool.acquire(&tried, r, &deadline, h.wait)
		if b == nil {
			h.unavailable(ctx, err, rid)
			return
		}
		h.pool.counted(b)
		hs, err := h.handshake(b.addr, head)
		if err != nil {
			b.release()
			// A refused dial marks the worker down, so that the retry
			// waits for its replacement when no other worker is ready.
			h.pool.notice(b, err, false)
			if isDialError(err) && attempt < maxAttempts {
				tried.add(b.key)
				continue
			}
			h.fail(ctx, b, err, rid)
			return
		}
		h.switchProtocols(ctx, b, hs, proto, rid)
		return
	}
}

// handshake is a worker's answer to an upgrade request, on the connection
// it came on.
type handshake struct {
	conn   net.Conn
	br     *bufio.Reader
	head   []byte // the answer's status line and header, as the worker sent them
	header fasthttp.ResponseHeader
}

// handshake dials the worker at addr, writes the request head and reads the
// worker's answer, skipping informational responses. The response timeout
// bounds the exchange.
func (h *Handler) handshake(addr string, reqHead []byte) (*handshake, error) {
	c, err := dialWorker(addr)
	if err != nil {
		return nil, err
	}
	hs := &handshake{conn: c, br: bufio.NewReaderSize(c, DefaultHeaderBufferSize)}
	if err := hs.exchange(reqHead, h.respTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return hs, nil
}

func (hs *handshake) exchange(reqHead []byte, timeout time.Duration) error {
	if timeout > 0 {
		if err := hs.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	if _, err := hs.conn.Write(reqHead); err != nil {
		return fmt.Errorf("write upgrade request: %w", err)
	}
	for i := 0; ; i++ {
		head, err := peekHead(hs.br)
		if err != nil {
			return fmt.Errorf("read answer to upgrade: %w", err)
		}
		hs.header.Reset()
		if err := hs.header.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
			return fmt.Errorf("parse answer to upgrade: %w", err)
		}
		if s := hs.header.StatusCode(); s >= 200 || s == fasthttp.StatusSwitchingProtocols || i >= maxInterim {
			hs.head = bytes.Clone(head)
			return hs.conn.SetDeadline(time.Time{})
		}
		if _, err := hs.br.Discard(len(head)); err != nil {
			return err
		}
	}
}

// peekHead returns the response head at the start of br (through the empty
// line) without consuming it.
func peekHead(br *bufio.Reader) ([]byte, error) {
	for n := 1; ; {
		b, err := br.Peek(n)
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+4], nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errHeadTooLarge
		}
		if err != nil {
			return nil, err
		}
		n = max(len(b)+1, br.Buffered())
	}
}

// switchProtocols finishes an upgrade once the worker answered.
func (h *Handler) switchProtocols(ctx *fasthttp.RequestCtx, b *backend, hs *handshake, proto, rid []byte) {
	if hs.header.StatusCode() != fasthttp.StatusSwitchingProtocols {
		h.relayRefusal(ctx, b, hs, rid)
		return
	}
	if !offered(proto, hs.header.Peek("Upgrade")) {
		hs.conn.Close()
		b.release()
		h.fail(ctx, b, fmt.Errorf("worker switched to %q, asked for %q", hs.header.Peek("Upgrade"), string(proto)), rid)
		return
	}
	if _, err := hs.br.Discard(len(hs.head)); err != nil {
		hs.conn.Close()
		b.release()
		h.fail(ctx, b, err, rid)
		return
	}
	// Bytes the worker sent right after its 101 go to the client with it.
	greeting := hs.head
	if n := hs.br.Buffered(); n > 0 {
		early, _ := hs.br.Peek(n)
		greeting = append(greeting, early...)
	}
	t := &tunnel{set: h.tunnels, b: b, worker: hs.conn, greeting: greeting}
	if h.access != nil {
		t.entry = h.newEntry(ctx, b, fasthttp.StatusSwitchingProtocols, rid)
	}
	b.tunnels.Add(1) // until t.release
	if !h.tunnels.add(t) {
		b.tunnels.Add(-1)
		hs.conn.Close()
		b.release()
		h.unavailable(ctx, errors.New("stopping"), rid)
		return
	}
	b.freeSlot() // an open tunnel does not hold a request slot, only its in-flight count
	// fasthttp skips the hijack of a request that asked to close the
	// connection, unless no response is written (v1.78.0 server.go); the
	// flag is also cleared, so a client that sent "Connection: close" on the
	// handshake still gets its tunnel.
	ctx.Request.Header.ResetConnectionClose()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(t.serve)
}

// offered reports whether every protocol the worker switched to is one the
// client asked for.
func offered(asked, chosen []byte) bool {
	found := false
	for rest := chosen; len(rest) > 0; {
		var tok []byte
		if tok, rest = cutToken(rest); len(tok) > 0 {
			found = true
			if !hasToken(asked, string(tok)) {
				return false
			}
		}
	}
	return found
}

// relayRefusal relays a worker's refusal of an upgrade as a plain response;
// the client's connection stays an HTTP connection.
func (h *Handler) relayRefusal(ctx *fasthttp.RequestCtx, b *backend, hs *handshake, rid []byte) {
	defer hs.conn.Close()
	defer b.release()
	up := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(up)
	if h.respTimeout > 0 {
		_ = hs.conn.SetReadDeadline(time.Now().Add(h.respTimeout)) // a failure shows in the read
	}
	if err := up.ReadLimitBody(hs.br, maxRefusalBody); err != nil {
		h.fail(ctx, b, fmt.Errorf("read refusal of upgrade: %w", err), rid)
		return
	}
	resp := &ctx.Response
	up.CopyTo(resp)
	removeHopByHop(&resp.Header)
	resp.Header.ResetConnectionClose()
	resp.Header.SetBytesV("X-Request-Id", rid)
	if h.access != nil {
		h.newEntry(ctx, b, up.StatusCode(), rid).write(int64(len(up.Body())), nil)
	}
}
