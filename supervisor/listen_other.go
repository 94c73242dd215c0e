//go:build !linux

package supervisor

import (
	"net"
	"strconv"
	"time"
)

// listensOn reports whether something accepts connections on the loopback
// port. Without /proc it cannot tell the worker from another program that
// took the port; the worker would then fail to listen and be restarted.
func listensOn(pgid, port int) (bool, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false, nil
	}
	c.Close()
	return true, nil
}

// listenerOn cannot tell which process listens without /proc: it returns
// pgid when something accepts connections on the loopback port.
func listenerOn(pgid, port int) (int, error) {
	if ok, err := listensOn(pgid, port); !ok {
		return 0, err
	}
	return pgid, nil
}

// commandLine cannot read a command line without /proc.
func commandLine(pid int) string { return "" }

// listensOnUnix reports whether something accepts connections at the Unix
// socket path.
func listensOnUnix(pgid int, path string) (bool, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false, nil
	}
	c.Close()
	return true, nil
}

// exposedOn finds nothing without /proc: the check after start is Linux's.
func exposedOn(pgid, port int) []string { return nil }

// connsOn counts nothing without /proc: a stop in direct mode reports no
// connections.
func connsOn(pgid, port int) int { return 0 }
