package control

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads who serves a connected Unix socket (SO_PEERCRED): the
// process that called listen, as it was then.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("read control socket peer: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("read control socket peer (SO_PEERCRED): %w", credErr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid)}, nil
}
