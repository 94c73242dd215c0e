//go:build linux

package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// clientGone reports whether the client at the other end of c has closed or
// reset its connection, by a non-blocking peek at the socket (as nginx's
// check of a broken connection): the end of the stream, or an error. A
// client that half-closed after its request looks gone too, as in nginx. It
// reads nothing, so whatever the client sent stays where it was; it reports
// false when it cannot tell.
func clientGone(c net.Conn) bool {
	rc := rawConnOf(c)
	if rc == nil {
		return false
	}
	var buf [1]byte
	gone := false
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
			case e != 0 || n == 0:
				gone = true
			}
			return true // never wait for readability
		}
	})
	return gone || err != nil
}

// rawConnOf returns the socket under a client connection, or nil.
func rawConnOf(c net.Conn) syscall.RawConn {
	for {
		switch v := c.(type) {
		case *bareLFConn:
			c = v.Conn
		case *rawIOConn:
			return v.rc
		case syscall.Conn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
}
