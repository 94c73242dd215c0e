package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// errStreamClosed ends a close-delimited response cut at a stop's deadline.
var errStreamClosed = errors.New("response closed at the stop's deadline")

// untilClose sends a worker's body of unknown length to an HTTP/1.0 client,
// which cannot read the chunked coding (RFC 9112 section 6.1: it must not be
// sent to a 1.0 recipient): the body goes out as it comes, with neither
// Content-Length nor Transfer-Encoding, and closing the connection ends it
// (RFC 9112 section 6.3). fasthttp's server chunks every body stream of
// unknown length, so the handler hijacks the client's connection and writes
// the response itself. The worker's trailer fields are dropped.
type untilClose struct {
	set  *streamSet
	head []byte      // status line and header
	body *bodyReader // the worker's body; closing it ends the request's in-flight count

	mu     sync.Mutex // protects client, closed
	client net.Conn
	closed bool
}

// sendUntilClose hands resp's head and body to a hijack of the client's
// connection. resp's body must not have been set.
func (h *Handler) sendUntilClose(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, br *bodyReader) {
	br.out = nil // no trailer section
	resp.Header.SetContentLength(-2)
	resp.Header.Del(fasthttp.HeaderTransferEncoding)
	resp.Header.SetConnectionClose()
	u := &untilClose{set: h.streams, head: bytes.Clone(resp.Header.Header()), body: br}
	if !h.streams.add(u) {
		_ = br.CloseWithError(errStreamClosed)
		h.answer(ctx, fasthttp.StatusServiceUnavailable, "503 Service Unavailable: stopping\n", nil, nil)
		ctx.SetConnectionClose()
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(u.serve)
}

// serve is the fasthttp.HijackHandler; fasthttp closes c after it returns.
func (u *untilClose) serve(c net.Conn) {
	raw := c
	if un, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		raw = un.UnsafeConn()
	}
	if !u.attach(raw) {
		return
	}
	_, err := raw.Write(u.head)
	if err == nil {
		buf := tunnelBuffers.Get().(*[]byte)
		_, err = io.CopyBuffer(struct{ io.Writer }{raw}, struct{ io.Reader }{u.body}, *buf)
		tunnelBuffers.Put(buf)
	}
	u.finish(err)
}

// attach records the client's connection, unless a stop closed the stream
// before fasthttp handed it over.
func (u *untilClose) attach(c net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.client = c
	return true
}

// finish closes the worker's body, once, and leaves the set.
func (u *untilClose) finish(err error) {
	u.mu.Lock()
	u.closed = true
	body := u.body
	u.body = nil
	u.mu.Unlock()
	if body != nil {
		_ = body.CloseWithError(err)
	}
	u.set.remove(u)
}

// abort closes the stream from outside: the client's connection, which ends
// serve's copy, or, when the hijack never came, the stream itself.
func (u *untilClose) abort() {
	u.mu.Lock()
	client := u.client
	u.closed = true
	u.mu.Unlock()
	if client != nil {
		_ = client.Close() // serve sees the write fail and finishes
		return
	}
	u.finish(errStreamClosed)
}

// streamSet tracks the close-delimited responses being sent, so that a stop
// waits for them like for any response and closes those left at its
// deadline. It is safe for concurrent use.
type streamSet struct {
	mu       sync.Mutex // protects open, stopping
	open     map[*untilClose]struct{}
	stopping bool
	idle     chan struct{} // closed once stopping and none is open
}

func newStreamSet() *streamSet {
	return &streamSet{open: make(map[*untilClose]struct{}), idle: make(chan struct{})}
}

// add registers u; false when the set is stopping.
func (s *streamSet) add(u *untilClose) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.open[u] = struct{}{}
	return true
}

func (s *streamSet) remove(u *untilClose) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.open[u]; !ok {
		return
	}
	delete(s.open, u)
	if s.stopping && len(s.open) == 0 {
		close(s.idle)
	}
}

// wait refuses new streams and returns once every open one has ended; when
// ctx ends first, it closes those left and waits for them.
func (s *streamSet) wait(ctx context.Context) {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		if len(s.open) == 0 {
			close(s.idle)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.idle:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	list := make([]*untilClose, 0, len(s.open))
	for u := range s.open {
		list = append(list, u)
	}
	s.mu.Unlock()
	for _, u := range list {
		u.abort()
	}
	<-s.idle
}
