package accept

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rescue accepts a client while accepts fail for lack of descriptors: it
// waits up to d for one to wait in the listener's queue, then accepts it,
// on the spare descriptor when no other is free. The spare is closed only
// for a client that waits, just before its accept, so that the descriptor
// it frees is taken again at once; a spare closed on the chance that a
// client comes stays free for the time of an accept's wait, and the
// public listener's retries take it for good. rescue returns nil when no
// client came or none could be accepted; the caller then tries again.
func (l *Listener) rescue(d time.Duration) net.Conn {
	if !l.waitClient(time.Now().Add(d)) {
		return nil
	}
	// Descriptors may be back: a plain accept first.
	c, err := l.acceptWithin(probeWindow)
	switch {
	case err == nil:
		l.recovered()
		return c
	case !ResourceError(err):
		return nil // the client left, or the listener closed: Accept sees it
	}
	l.failed(err)
	if !l.releaseSpare() {
		return nil
	}
	c, err = l.acceptWithin(probeWindow)
	if err != nil {
		l.restoreSpare()
		return nil
	}
	return &spareConn{Conn: c, l: l}
}

// acceptWithin accepts a connection that is expected to wait in the queue;
// the deadline ends the accept if it left meanwhile.
func (l *Listener) acceptWithin(d time.Duration) (net.Conn, error) {
	l.setDeadline(time.Now().Add(d))
	defer l.setDeadline(time.Time{})
	return l.ln.Accept()
}

// waitClient waits until a client waits in the listener's queue, and
// reports whether one does by deadline; it reports false when the
// listener closes. It watches the queue through the spare descriptor,
// which shares the listening socket. While the spare is out (with a
// connection, until it closes, or taken by another part of percore in the
// instant it was free, until that part lets its descriptor go), it tries
// to reserve it again every BackoffMin.
func (l *Listener) waitClient(deadline time.Time) bool {
	for time.Now().Before(deadline) {
		f := l.spareFile()
		if f == nil {
			if !l.restoreSpare() && !l.nap(min(BackoffMin, time.Until(deadline)), l.spareBack) {
				return false
			}
			continue
		}
		waiting, err := clientWaits(f, deadline)
		if waiting {
			return true
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
		// The spare was closed under the wait (by Close), or cannot be
		// watched: pause instead.
		if !l.nap(min(BackoffMin, time.Until(deadline)), nil) {
			return false
		}
	}
	return false
}

// clientWaits waits, on the runtime's poller, until a connection waits in
// the queue of the listening socket f shares, or deadline.
func clientWaits(f *os.File, deadline time.Time) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	if err := f.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	waiting := false
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(fds, 0)
		waiting = n > 0 && fds[0].Revents&unix.POLLIN != 0
		return waiting
	})
	return waiting, err
}

// spareFile returns the spare descriptor, or nil when none is held.
func (l *Listener) spareFile() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spare
}

// releaseSpare closes the spare descriptor; it reports false when none was held.
func (l *Listener) releaseSpare() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare == nil {
		return false
	}
	_ = l.spare.Close() // a pollable file's Close returns once the descriptor is closed
	l.spare = nil
	return true
}

// refill reserves the spare descriptors of this listener and of
// Config.Refill again, where they are out.
func (l *Listener) refill() {
	l.restoreSpare()
	for _, r := range l.cfg.Refill {
		r.restoreSpare()
	}
}

// restoreSpare reserves the spare descriptor again, if the listener wants
// one and holds none, and reports whether it holds one now. It fails
// quietly while descriptors are short; a later call tries again.
func (l *Listener) restoreSpare() bool {
	if !l.cfg.Spare {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return false
	default:
	}
	if l.spare != nil {
		return true
	}
	sc, ok := l.ln.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	nfd := -1
	_ = rc.Control(func(fd uintptr) {
		// Close-on-exec: a worker must never inherit the listening socket.
		nfd, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if nfd < 0 {
		return false
	}
	// The duplicate shares the socket's non-blocking mode, so the file
	// is watched by the runtime's poller, which needs no descriptor of its
	// own. Never call its Fd method: it would make the socket blocking.
	l.spare = os.NewFile(uintptr(nfd), "spare")
	select {
	case l.spareBack <- struct{}{}:
	default:
	}
	return true
}

// spareConn is the connection accepted on the spare descriptor; closing it
// gives the descriptor back to the reserve.
type spareConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

// Close implements net.Conn.
func (c *spareConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.restoreSpare() })
	return err
}
