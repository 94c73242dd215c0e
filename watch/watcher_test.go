package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeReloader counts reloads; each one waits for release when hold is set.
type fakeReloader struct {
	mu      sync.Mutex
	count   int
	started chan int
	hold    chan struct{} // nil: reloads end at once
}

func (f *fakeReloader) Reload(ctx context.Context) (Result, error) {
	f.mu.Lock()
	f.count++
	n := f.count
	f.mu.Unlock()
	f.started <- n
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	return Result{Replaced: 2, Took: time.Millisecond}, nil
}

func (f *fakeReloader) reloads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// watching runs a Watcher on dir until the test ends.
func watching(t *testing.T, dir string, r Reloader, ignore ...string) *Watcher {
	t.Helper()
	return run(t, Config{Paths: []string{dir}, Ignore: ignore, Debounce: 100 * time.Millisecond, Reloader: r})
}

// run runs a Watcher with cfg until the test ends.
func run(t *testing.T, cfg Config) *Watcher {
	t.Helper()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Trace})
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- w.Run() }()
	t.Cleanup(func() {
		w.Stop()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after Stop")
		}
	})
	return w
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newFake() *fakeReloader { return &fakeReloader{started: make(chan int, 100)} }

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectReload waits for reload number n.
func expectReload(t *testing.T, f *fakeReloader, n int) {
	t.Helper()
	select {
	case got := <-f.started:
		if got != n {
			t.Fatalf("reload %d started, want %d", got, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload %d", n)
	}
}

// expectNoReload checks that no reload starts within a few debounces.
func expectNoReload(t *testing.T, f *fakeReloader) {
	t.Helper()
	select {
	case n := <-f.started:
		t.Fatalf("reload %d started, want none", n)
	case <-time.After(600 * time.Millisecond):
	}
}

func TestBurstGivesOneReload(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	watching(t, dir, f)
	for i := 0; i < 50; i++ {
		write(t, filepath.Join(dir, "app.js"), strings.Repeat("x", i))
		time.Sleep(2 * time.Millisecond)
	}
	expectReload(t, f, 1)
	expectNoReload(t, f)
}

func TestIgnoredChangesReloadNothing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "node_modules", "lib", "index.js"), "")
	write(t, filepath.Join(dir, ".git", "HEAD"), "")
	f := newFake()
	w := watching(t, dir, f, "*.log")
	for _, d := range w.Watched() {
		if strings.Contains(d, "node_modules") || strings.Contains(d, ".git") {
			t.Errorf("watching %s", d)
		}
	}
	write(t, filepath.Join(dir, "node_modules", "lib", "index.js"), "changed")
	write(t, filepath.Join(dir, "node_modules", "new", "index.js"), "new")
	write(t, filepath.Join(dir, ".git", "HEAD"), "changed")
	write(t, filepath.Join(dir, ".app.js.swp"), "")
	write(t, filepath.Join(dir, "4913"), "")
	write(t, filepath.Join(dir, "server.log"), "")
	expectNoReload(t, f)
	write(t, filepath.Join(dir, "app.js"), "changed")
	expectReload(t, f, 1)
}

func TestNewDirectoryIsWatched(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	w := watching(t, dir, f)
	sub := filepath.Join(dir, "routes", "api")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	expectReload(t, f, 1) // creating it is a change
	if !slices.Contains(w.Watched(), sub) {
		t.Fatalf("watched %v, want %s among them", w.Watched(), sub)
	}
	write(t, filepath.Join(sub, "users.js"), "v2")
	expectReload(t, f, 2)
}

func TestDeletedDirectoryIsDropped(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "lib")
	write(t, filepath.Join(sub, "deep", "a.js"), "")
	f := newFake()
	w := watching(t, dir, f)
	if got := len(w.Watched()); got != 3 {
		t.Fatalf("watching %d directories, want 3: %v", got, w.Watched())
	}
	for round := 1; round <= 3; round++ {
		if err := os.RemoveAll(sub); err != nil {
			t.Fatal(err)
		}
		expectReload(t, f, 2*round-1)
		if got := w.Watched(); !slices.Equal(got, []string{dir}) {
			t.Fatalf("after deleting %s: watching %v, want only %s", sub, got, dir)
		}
		write(t, filepath.Join(sub, "deep", "a.js"), "")
		expectReload(t, f, 2*round)
	}
	if got := len(w.Watched()); got != 3 {
		t.Fatalf("after three rounds: watching %d directories, want 3: %v", got, w.Watched())
	}
}

func TestChangesDuringReloadQueueOneMore(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.hold = make(chan struct{})
	watching(t, dir, f)
	write(t, filepath.Join(dir, "app.js"), "v1")
	expectReload(t, f, 1)
	for i := 0; i < 5; i++ {
		write(t, filepath.Join(dir, "app.js"), strings.Repeat("v", i+2))
		time.Sleep(150 * time.Millisecond) // past the debounce each time
	}
	expectNoReload(t, f) // none while one runs
	f.hold <- struct{}{}
	expectReload(t, f, 2)
	f.hold <- struct{}{}
	expectNoReload(t, f)
	if n := f.reloads(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
}

func TestWatchedFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.js")
	write(t, file, "v1")
	f := newFake()
	run(t, Config{Paths: []string{file}, Reloader: f, Debounce: 50 * time.Millisecond})
	write(t, filepath.Join(dir, "other.js"), "")
	expectNoReload(t, f)
	// An editor's save: write a copy, then rename it over the file.
	write(t, file+".new", "v2")
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	expectReload(t, f, 1)
}

func TestMissingPathFails(t *testing.T) {
	_, err := New(Config{Paths: []string{filepath.Join(t.TempDir(), "nope")}, Reloader: newFake()})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New on a missing path: %v", err)
	}
}
