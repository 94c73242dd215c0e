//go:build linux

package proxy

import (
	"bufio"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// rawIOConn is a socket whose reads and writes go to the kernel as raw
// system calls on its non-blocking descriptor, still waiting for readiness
// and deadlines through Go's poller.
//
// A plain net.Conn read or write tells the scheduler it is entering a
// system call that may block. On a busy proxy the background monitor then
// finds processors "in a system call" every few tens of microseconds, hands
// them to other threads and wakes those with futexes, and the proxy spends
// more of its CPU moving goroutines between threads than relaying bytes.
// Reads and writes on a non-blocking socket never block, so they need none
// of that (see BenchmarkRawIO and bench/run).
type rawIOConn struct {
	net.Conn
	rc syscall.RawConn

	// The calls handed to rc are method values made once, so that a read
	// or a write allocates nothing; their arguments and results pass
	// through these fields, under the mutexes.
	rmu     sync.Mutex
	rbuf    []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
	peekBuf [1]byte   // under rmu
	peeked  peekState // under rmu
	peekFn  func(fd uintptr)

	// Bytes written while holding, sent by the next Read just before it
	// waits (see flushBeforeRead). held is under wmu, and moves to
	// sending, under rmu, when a Read takes it.
	holding atomic.Bool
	held    []byte
	hasHeld atomic.Bool
	sending []byte
	sent    int
	sendErr syscall.Errno
	sendFn  func(fd uintptr) bool

	dmu     sync.Mutex // protects the read deadline's fields below
	rdWant  int64      // the read deadline asked for, in Unix nanoseconds; 0: none
	rdArmed int64      // the one the poller holds; 0: none
	rdSlack int64      // how much earlier than rdArmed rdWant may be without arming it anew
	waiting bool       // a read waits in the poller
}

// withRawIO returns c with raw reads and writes when it is a TCP or Unix
// socket, else c itself.
func withRawIO(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIOConn{Conn: c, rc: rc}
	r.readFn, r.writeFn, r.peekFn, r.sendFn = r.readOnce, r.writeSome, r.peekOnce, r.sendThenRead
	return r
}

// connIdle reports whether nothing at all can be read from c now: no byte,
// no end of stream, no error. It does not wait and consumes nothing. A
// connection it cannot check counts as idle.
func connIdle(c net.Conn) bool { return connPeek(c) == peekIdle }

// connPeek tells what could be read from c now, without waiting and without
// consuming anything. A connection it cannot check counts as idle.
func connPeek(c net.Conn) peekState {
	if r, ok := c.(*rawIOConn); ok {
		return r.peek()
	}
	return peekIdle
}

// peek peeks at the socket without blocking (recv with MSG_PEEK and
// MSG_DONTWAIT), as nginx tests its cached upstream connections.
func (c *rawIOConn) peek() peekState {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.peeked = peekEnd
	if err := c.rc.Control(c.peekFn); err != nil {
		return peekEnd
	}
	return c.peeked
}

// peekOnce peeks one byte; only "would block" means idle.
func (c *rawIOConn) peekOnce(fd uintptr) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			c.peeked = peekIdle
		case e == 0 && n > 0:
			c.peeked = peekData
		default:
			c.peeked = peekEnd
		}
		return
	}
}

// Read implements io.Reader.
func (c *rawIOConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.armIfStale(false); err != nil {
		return 0, err
	}
	c.rbuf, c.rn, c.rerr = p, 0, 0
	var err error
	if c.hasHeld.Load() {
		err = c.sendHeldAndRead()
	} else {
		err = c.rc.Read(c.readFn)
	}
	c.rbuf = nil
	c.dmu.Lock()
	c.waiting = false
	c.dmu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case c.rerr != 0:
		return 0, c.opError("read", c.rerr)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// readOnce reads into rbuf; it returns false to wait for readability,
// with the read deadline armed.
func (c *rawIOConn) readOnce(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// An error arming the deadline is the connection's, and the
			// wait reports it.
			_ = c.armIfStale(true)
			return false
		}
		c.rn, c.rerr = int(r), e
		return true
	}
}

// maxHeld bounds the bytes a Write may hold for the next Read: a buffered
// writer's buffer.
const maxHeld = 16 << 10

// flushBeforeRead flushes bw, which writes to c, when c is about to be read
// for an answer: c sends the bytes flushed last from inside its next Read,
// once Go's poller is ready to see the answer arrive, and waits for it
// without first reading nothing. A read that follows a write at once
// otherwise nearly always finds nothing yet and costs a system call for
// it. The caller must Read c next (or close it).
func flushBeforeRead(bw *bufio.Writer, c net.Conn) error {
	r, ok := c.(*rawIOConn)
	if !ok || bw.Buffered() > maxHeld {
		return bw.Flush()
	}
	r.holding.Store(true)
	err := bw.Flush()
	r.holding.Store(false)
	return err
}

// sendHeldAndRead is a Read, under rmu, that first sends the held bytes.
// The poller forgets any earlier readiness when a read begins, so only
// bytes sent after that begins can be waited for without a first read:
// here the answer to them cannot arrive unseen.
func (c *rawIOConn) sendHeldAndRead() error {
	c.wmu.Lock()
	c.sending, c.held = c.held, c.sending[:0]
	c.hasHeld.Store(false)
	c.wmu.Unlock()
	c.sent, c.sendErr = 0, 0
	err := c.rc.Read(c.sendFn)
	rest := c.sending[c.sent:]
	c.sending = c.sending[:0]
	switch {
	case err != nil:
		return err
	case c.sendErr != 0:
		return c.opError("write", c.sendErr)
	case len(rest) == 0:
		return nil
	}
	// The socket's buffer was full: the rest goes the usual way, with the
	// write deadline, and then the read.
	if _, err := c.Write(rest); err != nil {
		return err
	}
	return c.rc.Read(c.readFn)
}

// sendThenRead sends what sendHeldAndRead took, then reads as readOnce.
// It returns true, with rn and rerr untouched, when the socket takes only
// part of the bytes, or fails (sendErr).
func (c *rawIOConn) sendThenRead(fd uintptr) bool {
	if c.sent == len(c.sending) {
		return c.readOnce(fd)
	}
	for c.sent < len(c.sending) {
		rest := c.sending[c.sent:]
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			c.sent += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			c.sendErr = e
			return true
		}
	}
	// An error arming the deadline is the connection's, and the wait
	// reports it.
	_ = c.armIfStale(true)
	return false
}

// SetReadDeadline implements net.Conn. The deadline goes to the poller
// only when a read has to wait, and only when the one the poller holds is
// not close enough: fasthttp moves a connection's read deadline twice a
// request, the upstream transport twice more, and most reads find their
// bytes there without waiting. A deadline may thus fire late by up to a
// thirty-second of its length, never early; a read already waiting gets a
// new deadline at once.
func (c *rawIOConn) SetReadDeadline(t time.Time) error {
	var want int64
	if !t.IsZero() {
		want = max(t.UnixNano(), 1)
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.rdWant = want
	if c.waiting {
		return c.armLocked()
	}
	return nil
}

// SetDeadline implements net.Conn.
func (c *rawIOConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// armIfStale gives the poller the read deadline asked for, unless the one
// it holds is at most rdSlack later. waiting tells whether a read is about
// to wait.
func (c *rawIOConn) armIfStale(waiting bool) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.waiting = waiting
	want, armed := c.rdWant, c.rdArmed
	if want == armed || (want != 0 && armed != 0 && want <= armed && want >= armed-c.rdSlack) {
		return nil
	}
	return c.armLocked()
}

// armLocked gives the poller the read deadline asked for, a sixty-fourth of
// what is left of it later, so that the next requests' deadlines, as long
// as they fall within twice that, need no new one. A deadline the poller
// held may have fired meanwhile: a deadline is armed anew whenever the one
// asked for is later than the one held, so one that fired had passed.
func (c *rawIOConn) armLocked() error {
	if c.rdWant == 0 {
		c.rdArmed, c.rdSlack = 0, 0
		return c.Conn.SetReadDeadline(time.Time{})
	}
	headroom := max((c.rdWant-time.Now().UnixNano())/64, 0)
	c.rdArmed, c.rdSlack = c.rdWant+headroom, 2*headroom
	return c.Conn.SetReadDeadline(time.Unix(0, c.rdArmed))
}

// Write implements io.Writer. It returns once all of p is written, or on
// an error or deadline.
func (c *rawIOConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.holding.Load() && len(c.held)+len(p) <= maxHeld {
		c.held = append(c.held, p...)
		c.hasHeld.Store(true)
		return len(p), nil
	}
	if len(c.held) > 0 {
		held := c.held
		c.held = c.held[:0]
		c.hasHeld.Store(false)
		if _, err := c.writeLocked(held); err != nil {
			return 0, err
		}
	}
	return c.writeLocked(p)
}

// writeLocked writes all of p, under wmu.
func (c *rawIOConn) writeLocked(p []byte) (int, error) {
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	c.wbuf = nil
	switch {
	case err != nil:
		return c.wn, err
	case c.werr != 0:
		return c.wn, c.opError("write", c.werr)
	}
	return c.wn, nil
}

// writeSome writes what is left of wbuf; it returns false to wait for
// writability.
func (c *rawIOConn) writeSome(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			c.wn += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// ReadFrom implements io.ReaderFrom as net.TCPConn does for a reader that is
// not a file or socket: it writes whatever each read returns at once. A
// buffered writer over the connection hands a streamed response body to
// ReadFrom when its buffer is empty, and without it would hold the body back
// until the buffer is full.
func (c *rawIOConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{c}, r, buf[:])
}

// copyBufferSize is the size of ReadFrom's buffer, as io.Copy's.
const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// writerOnly hides a writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

// CloseWrite shuts down the writing side, for tunnels' half-closes.
func (c *rawIOConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *rawIOConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: os.NewSyscallError(op, errno)}
}

// rawIOListener accepts rawIOConns.
type rawIOListener struct{ net.Listener }

// Accept implements net.Listener.
func (l rawIOListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return withRawIO(c), nil
}
