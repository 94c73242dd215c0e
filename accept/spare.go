package accept

import (
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rescue frees the spare descriptor to accept one connection while the
// process has none left. It returns nil when there is no spare or no client
// waiting; the spare is then reserved again.
func (l *Listener) rescue() net.Conn {
	if !l.releaseSpare() {
		return nil
	}
	l.setDeadline(time.Now().Add(probeWindow))
	c, err := l.ln.Accept()
	l.setDeadline(time.Time{})
	if err != nil {
		l.restoreSpare()
		return nil
	}
	return &spareConn{Conn: c, l: l}
}

// releaseSpare closes the spare descriptor; it reports false when none was held.
func (l *Listener) releaseSpare() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare < 0 {
		return false
	}
	_ = syscall.Close(l.spare)
	l.spare = -1
	return true
}

// restoreSpare reserves the spare descriptor again, if the listener wants
// one and holds none; it fails quietly while descriptors are short, and the
// next failed accept tries again.
func (l *Listener) restoreSpare() {
	if !l.cfg.Spare {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return
	default:
	}
	if l.spare >= 0 {
		return
	}
	sc, ok := l.ln.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		// Close-on-exec: a worker must never inherit the listening socket.
		if nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			l.spare = nfd
		}
	})
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
	c.once.Do(c.l.restoreSpare)
	return err
}
