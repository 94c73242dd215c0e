package proxy

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// errBodyTooLarge ends a request body that outgrows the body limit.
var errBodyTooLarge = errors.New("request body over the limit")

// requestBody is a client's request body on its way to a worker. It counts
// what it reads and cuts a body that outgrows the limit, and it remembers
// whether the client's side failed (broken chunked framing, a client gone
// mid-upload), so that the failure is answered as the client's and not
// blamed on the worker. It holds no more than one read-ahead buffer,
// whatever the body's size. Each read waits at most the idle timeout for the
// client's next bytes, so a client that stops sending mid-body ends its
// request instead of holding a worker's request open.
type requestBody struct {
	r        io.Reader            // fasthttp's stream of the client's body
	ctx      *fasthttp.RequestCtx // the request's, for the read deadline; nil once released
	idle     time.Duration        // 0: no idle timeout
	ahead    []byte               // read ahead before forwarding, not yet passed on
	n        int64                // bytes read from r
	size     int64                // the Content-Length; -1 for a chunked body
	max      int64                // 0: no limit
	tooLarge bool
	err      error // the client's stream failed with it

	buf [4 << 10]byte
}

var requestBodyPool = sync.Pool{New: func() any { return new(requestBody) }}

// acquireRequestBody returns a requestBody for ctx's body stream r, which
// it must not outlive: the handler releases it before it returns.
func acquireRequestBody(ctx *fasthttp.RequestCtx, r io.Reader, size int, max int64, idle time.Duration) *requestBody {
	rb := requestBodyPool.Get().(*requestBody)
	rb.r, rb.ctx, rb.size, rb.max, rb.idle = r, ctx, int64(size), max, idle
	return rb
}

func releaseRequestBody(rb *requestBody) {
	rb.r, rb.ctx, rb.idle, rb.ahead, rb.n, rb.size, rb.max, rb.tooLarge, rb.err = nil, nil, 0, nil, 0, 0, 0, false, nil
	requestBodyPool.Put(rb)
}

// readAhead reads the first piece of a chunked body before any worker is
// involved, so that a body whose framing is broken from its first line is
// refused without reaching a worker. It reads once, so it waits only for the
// client to start its body, never for more of it. It reports whether the
// whole body has been read.
func (rb *requestBody) readAhead() (complete bool, err error) {
	n, err := rb.read(rb.buf[:])
	rb.ahead = rb.buf[:n]
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// Read implements io.Reader.
func (rb *requestBody) Read(p []byte) (int, error) {
	if len(rb.ahead) > 0 {
		n := copy(p, rb.ahead)
		rb.ahead = rb.ahead[n:]
		return n, nil
	}
	return rb.read(p)
}

func (rb *requestBody) read(p []byte) (int, error) {
	if rb.idle > 0 {
		// fasthttp lifts a deadline set through ctx once the handler
		// returns. A failure means a closed connection, which the read
		// reports.
		_ = rb.ctx.SetReadDeadline(time.Now().Add(rb.idle))
	}
	n, err := rb.r.Read(p)
	rb.n += int64(n)
	if rb.max > 0 && rb.n > rb.max {
		rb.tooLarge = true
		return 0, errBodyTooLarge
	}
	if err == io.EOF && rb.size >= 0 && rb.n < rb.size {
		// The client closed its connection before the end of its body.
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		rb.err = err
	}
	return n, err
}

// failed reports whether forwarding failed on the client's side.
func (rb *requestBody) failed() bool { return rb.tooLarge || rb.err != nil }

// stalled reports whether the client stopped sending its body for longer
// than the idle timeout.
func (rb *requestBody) stalled() bool { return rb.err != nil && isTimeout(rb.err) }
