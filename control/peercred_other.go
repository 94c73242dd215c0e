//go:build unix && !linux && !darwin && !freebsd

package control

import (
	"fmt"
	"net"
	"runtime"
)

// peerOf cannot tell who serves a socket on this system, so the control
// commands refuse to send anything rather than trust an unknown peer.
func peerOf(*net.UnixConn) (Peer, error) {
	return Peer{}, fmt.Errorf("read control socket peer: not supported on %s", runtime.GOOS)
}
