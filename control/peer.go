package control

import (
	"fmt"
	"net"
	"os"
	"time"
)

// Peer is the process at the other end of a control connection, as the
// kernel reports it: for a command, the one that created the listening
// socket; for percore, the one that connected.
type Peer struct {
	PID int // 0 when the system does not report it
	UID int // -1 when not known
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

// NoAnswerError says nothing accepts connections on a control socket:
// percore is not running there, or runs without a control socket.
type NoAnswerError struct {
	Path string
	Err  error
}

// Error implements error.
func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no percore answers on %s (is it running, and is this its control socket?): %v", e.Path, e.Err)
}

// Unwrap returns the dial's error.
func (e *NoAnswerError) Unwrap() error { return e.Err }

// TakenError says another process already holds a control socket's name
// (a live socket file of ours, or an abstract name, which anyone may bind):
// perhaps another percore on the same address, perhaps another user who
// took the name first. percore does not share it.
type TakenError struct {
	Addr string
	Peer Peer // the holder; UID -1 when it could not be asked
	UID  int  // percore's uid
}

// Error implements error.
func (e *TakenError) Error() string {
	if e.Peer.UID < 0 {
		return fmt.Sprintf("control socket %s is already bound by a process that accepts no connections; percore will not share it", e.Addr)
	}
	holder := fmt.Sprintf("pid %d", e.Peer.PID)
	if e.Peer.PID <= 0 {
		holder = "an unknown pid"
	}
	if e.Foreign() {
		return fmt.Sprintf("control socket %s is already taken by %s running as uid %d, not by %s: "+
			"another user may have taken its name; percore will not share it", e.Addr, holder, e.Peer.UID, usOrRoot(e.UID))
	}
	return fmt.Sprintf("control socket %s is already taken by %s (uid %d): is another percore running on the same address?",
		e.Addr, holder, e.Peer.UID)
}

// Unwrap returns ErrInUse.
func (e *TakenError) Unwrap() error { return ErrInUse }

// Foreign says the holder is not known to run as percore's user or root.
func (e *TakenError) Foreign() bool {
	return e.Peer.UID != e.UID && e.Peer.UID != 0
}

// takenError asks who holds the socket that c reached, and closes c
// without writing to it.
func takenError(addr string, c net.Conn) error {
	defer c.Close()
	e := &TakenError{Addr: addr, Peer: Peer{UID: -1}, UID: os.Getuid()}
	if uc, ok := c.(*net.UnixConn); ok {
		if p, err := peerOf(uc); err == nil {
			e.Peer = p
		}
	}
	return e
}

// ClientError is percore's refusal of a command from a process that runs
// as neither percore's user nor root.
type ClientError struct {
	Peer  Peer
	Owner int // the uid that may send commands, besides root
}

// Error implements error.
func (e *ClientError) Error() string {
	who := "a process"
	if e.Peer.PID > 0 {
		who = fmt.Sprintf("pid %d", e.Peer.PID)
	}
	return fmt.Sprintf("refused: %s runs as uid %d; this percore takes commands from %s only",
		who, e.Peer.UID, usOrRoot(e.Owner))
}

// dialChecked connects to the socket at path and checks who serves it
// before anything is written.
func dialChecked(path string, uid int) (*net.UnixConn, error) {
	nc, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, &NoAnswerError{Path: path, Err: err}
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
