package machine

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseOOMKill(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0", 2, true},
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 7", 7, true},
		{"oom_kill_disable 0\nunder_oom 0", 0, false},
		{"oom_kill x", 0, false},
	}
	for _, c := range cases {
		got, err := parseOOMKill(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseOOMKill(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestOOMCounterV2Fixture(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/self/cgroup", "0::/app\n")
	write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
	write("proc/meminfo", "MemTotal: 8000000 kB\n")
	write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
	write("sys/fs/cgroup/app/memory.max", "536870912\n")
	write("sys/fs/cgroup/app/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	c, ok := Detector{Root: root, Affinity: func() (int, error) { return 2, nil }}.OOMCounter()
	if !ok {
		t.Fatal("no OOM counter found in the fixture")
	}
	if n, err := c.Count(); err != nil || n != 1 || c.Limit != "512MiB" {
		t.Errorf("count %d, err %v, limit %q", n, err, c.Limit)
	}
	write("sys/fs/cgroup/app/memory.events", "oom 2\noom_kill 2\n")
	if n, _ := c.Count(); n != 2 {
		t.Errorf("count after a kill = %d, want 2", n)
	}
}
