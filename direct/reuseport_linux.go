//go:build linux

package direct

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenReusePort binds a listening TCP socket with SO_REUSEPORT on addr
// and returns it as a file of its own: the Go listener that made it is
// closed, so no goroutine of percore ever accepts on it.
func listenReusePort(addr string) (*os.File, string, error) {
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
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, "", fmt.Errorf("take the socket's descriptor: %w", err)
	}
	return f, resolvedAddr(addr, ln), nil
}

// MigrateSetting is where Linux says whether the connections queued on a
// closed listening socket move to another socket of its SO_REUSEPORT group.
const MigrateSetting = "/proc/sys/net/ipv4/tcp_migrate_req"

// Migrates reports whether the kernel moves the connections queued on a
// closed socket to the other sockets of its group (Linux 5.14 and later,
// net.ipv4.tcp_migrate_req=1), and why not when it does not.
func Migrates() (bool, string) {
	data, err := os.ReadFile(MigrateSetting)
	if err != nil {
		return false, "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14 or later)"
	}
	if strings.TrimSpace(string(data)) != "1" {
		return false, "net.ipv4.tcp_migrate_req is 0"
	}
	return true, ""
}
