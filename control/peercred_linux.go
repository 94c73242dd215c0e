package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads who serves a connected Unix socket (SO_PEERCRED): the
// process that called listen, as it was then.
func peerOf(c *net.UnixConn) (Peer, error) {
	return readPeer(c, "SO_PEERCRED", func(fd int) (Peer, error) {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return Peer{}, err
		}
		return Peer{PID: int(cred.Pid), UID: int(cred.Uid)}, nil
	})
}
