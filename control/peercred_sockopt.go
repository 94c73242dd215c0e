//go:build linux || darwin || freebsd

package control

import (
	"fmt"
	"net"
)

// readPeer runs read, which asks the kernel who serves the socket (option
// names the socket option, for errors), on c's descriptor.
func readPeer(c *net.UnixConn, option string, read func(fd int) (Peer, error)) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	var p Peer
	var readErr error
	if err := raw.Control(func(fd uintptr) { p, readErr = read(int(fd)) }); err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	if readErr != nil {
		return Peer{}, fmt.Errorf("read control socket peer (%s): %w", option, readErr)
	}
	return p, nil
}
