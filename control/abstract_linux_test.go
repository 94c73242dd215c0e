package control

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// uniqueName is an instance name no other test uses.
func uniqueName(t *testing.T) string {
	return fmt.Sprintf("test-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), t.Name())
}

// serve runs s for target until the test ends.
func serve(t *testing.T, s *Server, target Target) {
	done := make(chan error, 1)
	go func() { done <- s.Serve(target, Info{Public: "127.0.0.1:8080"}) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
}

func listed(t *testing.T, addr string) bool {
	t.Helper()
	found, err := Sockets()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range found {
		if s.Addr == addr {
			return true
		}
	}
	return false
}

// On Linux the default control socket is abstract: no file, no directory,
// found in /proc/net/unix while it runs, and its name cannot be shared.
func TestAbstractInstanceSocket(t *testing.T) {
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	name := uniqueName(t)
	s, err := ListenInstance(name, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := "@percore/" + name
	if s.Path() != addr {
		t.Fatalf("socket at %s, want %s", s.Path(), addr)
	}
	target := &fakeTarget{workers: 2}
	serve(t, s, target)
	if reply, err := Send(addr, "reload"); err != nil || reply != "ok reload started" {
		t.Errorf("reload through %s: %q, %v", addr, reply, err)
	}
	if !listed(t, addr) {
		t.Errorf("Sockets does not list %s", addr)
	}
	if _, err := os.Lstat(filepath.Join(xdg, "percore")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the abstract socket made a directory: %v", err)
	}

	_, err = ListenInstance(name, hclog.NewNullLogger())
	var taken *TakenError
	if !errors.As(err, &taken) || taken.Foreign() || taken.Peer.PID != os.Getpid() || taken.Addr != addr {
		t.Errorf("a second ListenInstance = %v, want a *TakenError naming this process", err)
	}
	s.Stop()
	if listed(t, addr) {
		t.Errorf("Sockets lists %s after Stop", addr)
	}
}

// asNobody runs f on an OS thread of its own whose effective uid is
// nobody's: what the kernel records for a socket that f binds or connects
// (SO_PEERCRED). Only that thread changes, and it ends with f.
func asNobody(t *testing.T, f func()) {
	t.Helper()
	needRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread is thrown away
		_, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), nobody, ^uintptr(0))
		if e != 0 {
			t.Errorf("setresuid: %v", e)
			return
		}
		f()
	}()
	<-done
}

// Another user that binds a percore's abstract name first: percore says
// who holds it and does not listen, and a command refuses to send to it.
func TestAbstractNameTakenByAnotherUser(t *testing.T) {
	name := uniqueName(t)
	addr := "@percore/" + name
	var ln net.Listener
	asNobody(t, func() {
		var err error
		if ln, err = net.Listen("unix", addr); err != nil {
			t.Errorf("listen as nobody: %v", err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	defer ln.Close()

	_, err := ListenInstance(name, hclog.NewNullLogger())
	var taken *TakenError
	if !errors.As(err, &taken) || !taken.Foreign() || taken.Peer.UID != nobody {
		t.Fatalf("ListenInstance = %v, want a *TakenError naming uid %d", err, nobody)
	}
	for _, want := range []string{addr, "uid 65534", "will not share"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	_, err = Send(addr, "reload")
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Peer.UID != nobody {
		t.Errorf("Send to the squatter = %v, want a *PeerError", err)
	}
}

// An abstract socket has no mode: any user can connect. percore refuses
// the commands of any but its own user and root.
func TestServerRefusesAnotherUser(t *testing.T) {
	needRoot(t)
	name := uniqueName(t)
	s, err := ListenInstance(name, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	target := &fakeTarget{workers: 2}
	serve(t, s, target)
	var reply string
	asNobody(t, func() {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Errorf("connect as nobody: %v", err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, "reload")
		reply, _ = bufio.NewReader(c).ReadString('\n')
	})
	if !strings.HasPrefix(reply, "error: refused") || !strings.Contains(reply, "uid 65534") {
		t.Errorf("reply to nobody = %q, want a refusal naming uid 65534", reply)
	}
	target.mu.Lock()
	defer target.mu.Unlock()
	if target.reloads != 0 {
		t.Errorf("%d reloads after a refused command", target.reloads)
	}
}
