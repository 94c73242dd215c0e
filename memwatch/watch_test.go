package memwatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"268435456\n", 256 << 20, true},
		{"max\n", 0, true},
		{"9223372036854771712\n", 0, true},
		{"-1", 0, false},
		{"lots", 0, false},
	} {
		got, err := parseLimit(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("parseLimit(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseHeld(t *testing.T) {
	const v1 = "cache 100\nrss 200\nactive_anon 1\ninactive_anon 2\nunevictable 4\n" +
		"total_cache 1000\ntotal_rss 2000\ntotal_active_anon 10\ntotal_inactive_anon 20\ntotal_active_file 999\ntotal_unevictable 40\n"
	const v2 = "anon 300\nfile 1000\nactive_anon 100\ninactive_anon 200\nactive_file 500\nunevictable 7\n"
	for _, c := range []struct {
		stat    string
		version int
		want    uint64
		ok      bool
	}{
		{v1, 1, 70, true},
		{v2, 2, 307, true},
		{"total_active_anon 10\ntotal_inactive_anon 20\n", 1, 30, true},
		{"active_anon 10\n", 2, 0, false},
		{"active_anon x\ninactive_anon 2\n", 2, 0, false},
		{"", 1, 0, false},
	} {
		got, err := parseHeld(c.stat, c.version)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("parseHeld(v%d %q) = %d, %v; want %d, ok %v", c.version, c.stat, got, err, c.want, c.ok)
		}
	}
}

// TestWatchWithoutNotifications opens a directory that looks like a v1
// memory cgroup but takes no registrations: the Watch reads its usage,
// says that nothing notifies, and its Run waits for Close.
func TestWatchWithoutNotifications(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"memory.usage_in_bytes": "104857600\n",
		"memory.limit_in_bytes": "268435456\n",
		"memory.stat":           "total_active_anon 50000000\ntotal_inactive_anon 30000000\ntotal_unevictable 0\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Open(dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	charged, held, limit, err := w.Usage()
	if err != nil || charged != 100<<20 || held != 80000000 || limit != 256<<20 {
		t.Errorf("Usage() = %d, %d, %d, %v", charged, held, limit, err)
	}
	if w.Notifies() != "" || w.Thresholds() {
		t.Errorf("Notifies() = %q, Thresholds() = %v; want nothing", w.Notifies(), w.Thresholds())
	}
	w.SetLevels(charged, []uint64{charged + 1})
	// Run blocks until Close even so: an actor of percore's run group
	// that returns stops percore.
	done := make(chan error, 1)
	go func() { done <- w.Run() }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before Close", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if _, err := Open(t.TempDir(), 1, nil); err == nil {
		t.Error("Open of an empty directory succeeded")
	}
}
