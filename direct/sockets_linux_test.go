//go:build linux

package direct

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSlotsShareOnePortAndKeepTheirQueue(t *testing.T) {
	s, err := Open(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f0, _ := s.File(0)
	f1, err := s.File(1)
	if err != nil {
		t.Fatalf("second socket on %s: %v", s.Addr(), err)
	}
	if again, _ := s.File(1); again != f1 {
		t.Error("File(1) opened a second socket for one slot")
	}
	if f0 == f1 {
		t.Error("two slots got one socket")
	}
	// Nobody accepts, yet a connection is not refused: it waits in a queue.
	c, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("connect while no worker accepts: %v", err)
	}
	c.Close()
	s.Release(1)
	if got := s.Slots(); len(got) != 1 || got[0] != 0 {
		t.Errorf("slots after releasing 1 = %v, want [0]", got)
	}
	if _, err := Open(Config{Addr: s.Addr()}); err == nil {
		// A second percore joins the group only with SO_REUSEPORT of the same user; this one is the same user.
		t.Log("a second Open of the same address joins the group (same user)")
	}
}

func TestAPortTakenWithoutReusePortIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Open(Config{Addr: ln.Addr().String()}); err == nil {
		t.Errorf("Open on %s, taken by a plain listener, succeeded", ln.Addr())
	}
}

// A worker sets its socket non-blocking, and the description is shared:
// passing the socket to the next worker (os/exec calls Fd) must not make it
// blocking again, or the running worker's accept loop hangs on an empty
// queue.
func TestPassingTheSocketOnKeepsItNonBlocking(t *testing.T) {
	s, err := Open(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, _ := s.File(0)
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	raw.Control(func(d uintptr) { fd = int(d) })
	if err := unix.SetNonblock(fd, true); err != nil { // what the worker's runtime does
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Error("starting a process with the socket made it blocking for the workers that share it")
	}
}
