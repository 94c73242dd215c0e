package control

import (
	"fmt"
	"net"
	"time"
)

// Peer is the process that serves a control socket, as the kernel reports
// it: the one that created the listening socket.
type Peer struct {
	PID int // 0 when the system does not report it
	UID int
}

// PeerError says the process serving a control socket runs as another user
// than the command's (and not as root): perhaps someone else bound the path
// first. The command was not sent.
type PeerError struct {
	Path string
	Peer Peer
	UID  int // the uid of the command
}

// Error implements error.
func (e *PeerError) Error() string {
	pid := "an unknown pid"
	if e.Peer.PID > 0 {
		pid = fmt.Sprintf("pid %d", e.Peer.PID)
	}
	return fmt.Sprintf("refusing to send to %s: it is served by %s running as uid %d, not by %s "+
		"(another user may have taken the path; nothing was sent)", e.Path, pid, e.Peer.UID, usOrRoot(e.UID))
}

// checkPeer accepts a peer that runs as uid or as root.
func checkPeer(path string, p Peer, uid int) error {
	if p.UID == uid || p.UID == 0 {
		return nil
	}
	return &PeerError{Path: path, Peer: p, UID: uid}
}

// dialChecked connects to the socket at path and checks who serves it
// before anything is written.
func dialChecked(path string, uid int) (*net.UnixConn, error) {
	nc, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("no percore answers on %s (is it running, and is this its --control path?): %w", path, err)
	}
	c := nc.(*net.UnixConn)
	p, err := peerOf(c)
	if err == nil {
		err = checkPeer(path, p, uid)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// usOrRoot names whom a path or peer may belong to: uid or root.
func usOrRoot(uid int) string {
	if uid == 0 {
		return "root"
	}
	return fmt.Sprintf("uid %d or root", uid)
}
