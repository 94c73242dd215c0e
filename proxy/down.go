package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// A worker is down when its address refuses connections: on loopback, or on
// a Unix socket, a refusal is the kernel saying that nothing listens there,
// so the worker's process is gone (or closed its server), which the
// supervisor learns only when it reaps the process, up to a few hundred
// milliseconds later. The pool takes a down worker out of rotation at once,
// tells the OnEject function as for an ejection (so that readiness agrees),
// and a request that failed on it waits for a replacement rather than
// failing. A worker that answers, even badly, or that closes a connection
// while it still listens, is not down.
//
// A killed process's sockets are closed one by one as it exits, the
// listener not necessarily first: Linux releases an exiting task's files in
// the reverse order of their descriptors, so the request's connection
// (opened last) ends a moment before the listener. A probe made in that
// moment is still accepted, by the kernel, into the listener's queue; the
// listener's close then resets it. So a probe that connects waits a little
// for that reset before it concludes that the worker lives.
const (
	// DownFor is how long a worker whose address refused a connection stays
	// out of rotation. The supervisor normally replaces it well before;
	// a live process that closed its listener is tried again afterwards.
	DownFor = 5 * time.Second
	// probeTimeout bounds the probe of a worker's address: the connection,
	// then the wait for its reset. On loopback a listener accepts, and a
	// closed port refuses, at once; a dying process closes its listener
	// within microseconds of the connection it was serving, or a few
	// milliseconds on a busy machine. A live worker costs the whole wait,
	// and only after it lost a connection.
	probeTimeout = 250 * time.Millisecond
)

// down reports whether b was found down and the mark holds at now.
func (b *backend) down(now int64) bool {
	return now != 0 && b.downUntil.Load() > now
}

// notice looks at the failure err of a request to b, and marks b down when
// it shows that nothing listens at b's address any more: a refused
// connection, or, when probe is set, one closed or reset before any answer
// after which a new connection is refused. The caller sets probe for a
// request it will retry, which waits for a replacement only when b is
// down; a request that fails anyway need not wait for the probe. It
// reports whether b was marked down.
func (p *Pool) notice(b *backend, err error, probe bool) bool {
	switch {
	case isDialError(err):
		if !refused(err) || !local(b.addr) {
			return false
		}
	case lostConnection(err) && probe:
		if !refuses(b.addr) {
			return false
		}
	default:
		return false
	}
	p.markDown(b)
	return true
}

// markDown takes b out of rotation for DownFor, unless it is already.
func (p *Pool) markDown(b *backend) {
	now := time.Now()
	for {
		cur := b.downUntil.Load()
		if cur > now.UnixNano() {
			return
		}
		until := now.Add(DownFor).UnixNano()
		if b.downUntil.CompareAndSwap(cur, until) {
			// A longer ejection for failed requests stays as it is.
			p.eject(b, max(until, b.ejectedUntil.Load()))
			return
		}
	}
}

// lostConnection reports a connection to a worker that ended before its
// answer: closed or reset by the worker's side.
func lostConnection(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// refused reports a connection attempt that found no listener: a refused
// TCP port, a handshake reset because the listener closed during it, or a
// Unix socket nobody listens on or whose file is gone.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ENOENT)
}

// local reports whether addr is a Unix socket's path or a loopback
// host:port, where a refusal is final rather than a network's guess.
func local(addr string) bool {
	if strings.HasPrefix(addr, "/") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refuses connects to the worker at addr once, without sending anything,
// and reports whether nothing listens there: the connection is refused, or
// reset unaccepted when the listener closes. A connection the worker
// accepts and keeps, or closes (a worker that lives, and refuses service),
// and a timeout, prove nothing.
func refuses(addr string) bool {
	if !local(addr) {
		return false
	}
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	deadline := time.Now().Add(probeTimeout)
	c, err := net.DialTimeout(network, addr, probeTimeout)
	if err != nil {
		return refused(err)
	}
	defer c.Close() // a probe that sent nothing: nothing to report
	if c.SetReadDeadline(deadline) != nil {
		return false
	}
	var b [1]byte
	_, err = c.Read(b[:])
	return errors.Is(err, syscall.ECONNRESET)
}
