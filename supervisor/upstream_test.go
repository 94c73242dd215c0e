package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With InheritSockets, a worker keeps a loopback port in PORT and gets a
// Unix socket that percore bound in SocketDir as descriptor 3; it is routed
// at that socket once it listens on it, and the socket file goes with the
// worker.
func TestInheritedSocketIsRoutedOnceItListens(t *testing.T) {
	dir := t.TempDir()
	rig := newRig(t, "inherited", 1, func(cfg *Config) {
		cfg.SocketDir, cfg.InheritSockets = dir, true
	}, "FAKE_DELAY_MS=200")
	var sock string
	deadline := time.Now().Add(5 * time.Second)
	for sock == "" && time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, "worker-*.sock"))
		if len(matches) > 0 {
			sock = matches[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sock == "" {
		t.Fatal("no socket bound in the socket directory")
	}
	if addr := rig.waitAdded(t); addr != sock {
		t.Fatalf("routed at %q, want the socket %q", addr, sock)
	}
	ws := rig.sup.Snapshot()[0]
	if ws.Port == 0 || !strings.Contains(rig.stdout.String(), "PORT "+strconv.Itoa(ws.Port)+"\n") {
		t.Errorf("port %d, output %q: want PORT a loopback port", ws.Port, rig.stdout.String())
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial the routed socket: %v", err)
	}
	c.Close()

	if err := syscall.Kill(-ws.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next := rig.waitAdded(t)
	if next == sock || filepath.Dir(next) != dir {
		t.Errorf("the restarted worker is routed at %q, want a socket of its own in %s", next, dir)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed worker's socket %s is left behind: %v", sock, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rig.sup.Stop(ctx)
	if err := <-rig.errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	rig.errc <- nil
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// A worker given a Unix socket that listens on PORT instead is routed
// there, over TCP, and the log says so.
func TestInheritedSocketFallsBackToTCP(t *testing.T) {
	rig := newRig(t, "serve", 1, func(cfg *Config) {
		cfg.SocketDir, cfg.InheritSockets = t.TempDir(), true
	})
	addr := rig.waitAdded(t)
	if want := "127.0.0.1:" + strconv.Itoa(rig.sup.Snapshot()[0].Port); addr != want {
		t.Errorf("routed at %q, want %q", addr, want)
	}
	if !strings.Contains(rig.log.String(), "reached over TCP") {
		t.Errorf("the log does not say the worker is reached over TCP:\n%s", rig.log.String())
	}
}

// The socket bindUnix returns refuses connections until its holder
// listens on it: none is queued for a worker that may never serve it.
func TestBoundSocketRefusesUntilListened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	f, err := bindUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, err := net.Dial("unix", path); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial before listen: %v, want connection refused", err)
	}
	if err := syscall.Listen(int(f.Fd()), 8); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial after listen: %v", err)
	}
	c.Close()
}
