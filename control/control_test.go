package control

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type fakeTarget struct {
	mu      sync.Mutex
	reloads int
	workers int
}

func (f *fakeTarget) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
}

func (f *fakeTarget) Scale(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 10 {
		return 0, errors.New("too many")
	}
	f.workers = n
	return n, nil
}

func (f *fakeTarget) ScaleBy(d int) (int, error) {
	f.mu.Lock()
	n := max(f.workers+d, 1)
	f.mu.Unlock()
	return f.Scale(n)
}

func TestCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	target := &fakeTarget{workers: 2}
	s, err := Listen(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(target, Info{Public: "127.0.0.1:8080", Admin: "127.0.0.1:8081"}) }()
	defer func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Error("socket file left behind")
		}
	}()

	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	cases := []struct{ cmd, want, wantErr string }{
		{"reload", "ok reload started", ""},
		{"scale +1", "ok workers=3", ""},
		{"scale -1", "ok workers=2", ""},
		{"scale 5", "ok workers=5", ""},
		{"scale 50", "", "too many"},
		{"scale 0", "", "at least 1"},
		{"scale lots", "", "want N"},
		{"explode", "", "unknown command"},
	}
	for _, c := range cases {
		got, err := Send(path, c.cmd)
		if c.wantErr != "" {
			if err == nil || !contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err %v, want %q", c.cmd, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.cmd, got, err, c.want)
		}
	}
	info, err := Ask(path)
	if err != nil || info != (Info{PID: os.Getpid(), Public: "127.0.0.1:8080", Admin: "127.0.0.1:8081"}) {
		t.Errorf("Ask = %+v, %v; want this pid and the addresses given to Serve", info, err)
	}
	if target.reloads != 1 {
		t.Errorf("reloads = %d", target.reloads)
	}
	_, err = Listen(path, hclog.NewNullLogger())
	var taken *TakenError
	if !errors.Is(err, ErrInUse) || !errors.As(err, &taken) || taken.Foreign() || taken.Peer.PID != os.Getpid() {
		t.Errorf("second Listen = %v, want a *TakenError naming this process", err)
	}
}

func TestSendWithoutServer(t *testing.T) {
	_, err := Send(filepath.Join(t.TempDir(), "none.sock"), "reload")
	var none *NoAnswerError
	if !errors.As(err, &none) || !contains(err.Error(), "no percore answers") {
		t.Errorf("err = %v, want a *NoAnswerError", err)
	}
}

func TestParseInfo(t *testing.T) {
	cases := []struct {
		reply string
		want  Info
		ok    bool
	}{
		{"ok pid=12 public=[::]:8080 admin=127.0.0.1:8081", Info{PID: 12, Public: "[::]:8080", Admin: "127.0.0.1:8081"}, true},
		{"ok pid=12 public=127.0.0.1:8080", Info{PID: 12, Public: "127.0.0.1:8080"}, true},
		{"ok public=127.0.0.1:8080", Info{}, false},
		{"ok reload started", Info{}, false},
		{"pid=12", Info{}, false},
	}
	for _, c := range cases {
		got, err := parseInfo(c.reply)
		if c.ok != (err == nil) || (c.ok && got != c.want) {
			t.Errorf("parseInfo(%q) = %+v, %v; want %+v ok=%v", c.reply, got, err, c.want, c.ok)
		}
	}
	if s := (Info{PID: 7, Public: ":8080"}).String(); s != "pid=7 public=:8080" {
		t.Errorf("Info.String = %q", s)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	staleSocket(t, path)
	s, err := Listen(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("a stale socket of ours must be replaced: %v", err)
	}
	s.Stop()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
