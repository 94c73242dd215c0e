//go:build darwin || freebsd

package control

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads who serves a connected Unix socket (LOCAL_PEERCRED). The
// pid is not reported here and stays 0.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	var cred *unix.Xucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("read control socket peer (LOCAL_PEERCRED): %w", credErr)
	}
	return Peer{UID: int(cred.Uid)}, nil
}
