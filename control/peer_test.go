package control

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPeer(t *testing.T) {
	cases := []struct {
		peer Peer
		uid  int
		ok   bool
	}{
		{Peer{PID: 10, UID: 1000}, 1000, true},
		{Peer{PID: 10, UID: 0}, 1000, true},
		{Peer{PID: 10, UID: 0}, 0, true},
		{Peer{PID: 10, UID: 65534}, 0, false},
		{Peer{PID: 10, UID: 1001}, 1000, false},
		{Peer{UID: 1001}, 1000, false},
	}
	for _, c := range cases {
		err := checkPeer("/run/percore/control.sock", c.peer, c.uid)
		if c.ok != (err == nil) {
			t.Errorf("peer %+v, uid %d: err = %v, want ok=%v", c.peer, c.uid, err, c.ok)
			continue
		}
		var pe *PeerError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("peer %+v: err = %v, want a *PeerError", c.peer, err)
		}
	}
	msg := checkPeer("/x.sock", Peer{PID: 4242, UID: 65534}, 0).Error()
	for _, want := range []string{"/x.sock", "pid 4242", "uid 65534", "nothing was sent"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}
