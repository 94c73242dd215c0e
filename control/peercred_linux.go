package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads who is at the other end of a connected Unix socket
// (SO_PEERCRED), as it was then: the process that called listen for a
// dialled socket, the one that called connect for an accepted one.
func peerOf(c *net.UnixConn) (Peer, error) {
	return readPeer(c, "SO_PEERCRED", func(fd int) (Peer, error) {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return Peer{}, err
		}
		return Peer{PID: int(cred.Pid), UID: int(cred.Uid)}, nil
	})
}
