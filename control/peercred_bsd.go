//go:build darwin || freebsd

package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerOf reads who is at the other end of a connected Unix socket
// (LOCAL_PEERCRED): the server for a dialled socket, the client for an
// accepted one. The pid is not reported here and stays 0.
func peerOf(c *net.UnixConn) (Peer, error) {
	return readPeer(c, "LOCAL_PEERCRED", func(fd int) (Peer, error) {
		cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err != nil {
			return Peer{}, err
		}
		return Peer{UID: int(cred.Uid)}, nil
	})
}
