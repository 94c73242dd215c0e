//go:build linux

package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// testSockets hands out a listening socket per slot, as direct mode's
// sockets do.
type testSockets struct {
	t     *testing.T
	mu    sync.Mutex // protects files
	files map[int]*os.File
}

func (s *testSockets) File(slot int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[slot]; f != nil {
		return f, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	s.files[slot] = f
	s.t.Cleanup(func() { f.Close() })
	return f, nil
}

func (s *testSockets) Release(slot int) {}

func (s *testSockets) Channel(uint64, int) (*os.File, []string, error) { return nil, nil, nil }

// A worker in direct mode whose own process, or a child of it (node under
// npm), listens on PORT itself is refused at its first start, and the
// error names the process.
func TestDirectWorkerListeningOnPortIsRefusedAtOnce(t *testing.T) {
	for _, c := range []struct {
		fake, want string
	}{
		{"serve", "the worker listens on PORT itself"},
		{"child-serve", "a child process of the worker (pid "},
	} {
		t.Run(c.fake, func(t *testing.T) {
			rig := newRig(t, c.fake, 1, func(cfg *Config) {
				cfg.Sockets = &testSockets{t: t, files: map[int]*os.File{}}
			})
			select {
			case err := <-rig.errc:
				var cl *CrashLoopError
				if !errors.As(err, &cl) || !cl.Refused || cl.Attempts != 1 || !strings.Contains(cl.Last, c.want) ||
					!strings.Contains(cl.Last, "--mode proxy") {
					t.Fatalf("Run = %v, want a refusal at the first start that says %q", err, c.want)
				}
				if c.fake == "child-serve" && !strings.Contains(cl.Last, "-test.run=^$") {
					t.Errorf("the refusal does not show the child's command line: %s", cl.Last)
				}
				rig.errc <- err
			case <-time.After(testutil.Scaled(20 * time.Second)):
				t.Fatal("Run did not give up")
			}
		})
	}
}

// With Ping, each worker gets a ping address of its own in EnvPing, shown
// in its status: a loopback port, or with SocketDir a Unix socket beside
// the workers' own, removed once the worker is gone.
func TestWorkersGetPingAddresses(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "port", true: "unix"}[unix], func(t *testing.T) {
			dir := ""
			if unix {
				dir = t.TempDir()
			}
			rig := newRig(t, "ping-env", 2, func(cfg *Config) {
				cfg.Ping, cfg.SocketDir = true, dir
			})
			rig.waitAdded(t)
			rig.waitAdded(t)
			seen := map[string]bool{}
			var paths []string
			for _, ws := range rig.sup.Snapshot() {
				env, ok := strings.CutPrefix(ws.Ping, "127.0.0.1:")
				if unix {
					env, ok = ws.Ping, filepath.Dir(ws.Ping) == dir && strings.HasSuffix(ws.Ping, ".ping")
					paths = append(paths, ws.Ping)
				}
				if !ok || seen[env] || !strings.Contains(rig.stdout.String(), "ping at "+env+"\n") {
					t.Errorf("worker %d: ping address %q, want one of its own, as in its env; output %q",
						ws.ID, ws.Ping, rig.stdout.String())
				}
				seen[env] = true
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rig.sup.Stop(ctx)
			if err := <-rig.errc; err != nil {
				t.Fatalf("Run = %v", err)
			}
			rig.errc <- nil
			for _, path := range paths {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the ping socket %s is left behind: %v", path, err)
				}
			}
		})
	}
}
