//go:build linux

package direct

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenReusePort binds a listening TCP socket with SO_REUSEPORT on addr,
// owned by uid owner (0: percore's own), and returns it as a file of its
// own: the Go listener that made it is closed.
func listenReusePort(addr string, owner int) (*os.File, string, error) {
	if owner != 0 {
		// A socket belongs to the file-system uid of the thread that makes
		// it; that uid is the thread's own, and root may set it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		prev, _ := unix.SetfsuidRetUid(owner)
		defer unix.SetfsuidRetUid(prev)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	// Plain TCP: Go listens with MPTCP where the kernel has it, and an MPTCP
	// socket refuses the steering program of the group (steer_linux.go).
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer ln.Close()
	f, err := plainFile(ln.(*net.TCPListener))
	if err != nil {
		return nil, "", err
	}
	return f, resolvedAddr(addr, ln), nil
}

// plainFile returns the listener's socket as a file that Go never switches
// between blocking and non-blocking. The mode belongs to the socket's open
// file description, which every worker of the slot shares: the file that
// TCPListener.File returns is set blocking by each Fd call, and os/exec
// calls Fd to pass it to the next worker, so a running worker's accept loop
// would block on an empty queue. A file made while the description is
// blocking is never touched again; the workers set it non-blocking.
func plainFile(ln *net.TCPListener) (*os.File, error) {
	dup, err := ln.File()
	if err != nil {
		return nil, fmt.Errorf("take the socket's descriptor: %w", err)
	}
	defer dup.Close()
	fd, err := unix.FcntlInt(dup.Fd(), unix.F_DUPFD_CLOEXEC, 0) // Fd leaves the description blocking
	if err != nil {
		return nil, fmt.Errorf("duplicate the socket's descriptor: %w", err)
	}
	return os.NewFile(uintptr(fd), dup.Name()), nil
}
