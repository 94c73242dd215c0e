//go:build linux

package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fillScript retains objects, and a 16 KiB Buffer per thousand of them,
// until V8 gives up.
const fillScript = `const keep = [];
const bufs = [];
for (let i = 0; ; i++) {
  const batch = new Array(1000);
  for (let j = 0; j < 1000; j++) {
    batch[j] = { id: i, name: 'item-' + i + '-' + j, tags: [j, j + 1], nested: { v: j * 1.5 } };
  }
  keep.push(batch);
  bufs.push(Buffer.alloc(16 * 1024, i & 255));
}
`

// TestHeapOOMBeforeCgroupOOM fills every worker slot NewPlan sizes for a
// memory cgroup with a node process that allocates until its heap is full,
// and checks that V8 stops each one ("JavaScript heap out of memory",
// SIGABRT) before the kernel's OOM killer has to.
func TestHeapOOMBeforeCgroupOOM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes; skipped with -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node is not installed: %v", err)
	}
	script := filepath.Join(t.TempDir(), "fill.js")
	if err := os.WriteFile(script, []byte(fillScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		memory  uint64
		cpus    int
		workers int
	}{
		{512 * MiB, 2, 2},
		{256 * MiB, 1, 1},
		{1024 * MiB, 2, 2},
	} {
		t.Run(FormatBytes(c.memory), func(t *testing.T) {
			plan := NewPlan(Resources{CPUs: c.cpus, Memory: c.memory}, Request{Runtime: RuntimeNode})
			if plan.Workers != c.workers {
				t.Fatalf("plan has %d workers, want %d: %+v", plan.Workers, c.workers, plan)
			}
			procs := plan.Workers
			if plan.SpareSlot {
				procs++
			}
			cg := newMemoryCgroup(t, c.memory)
			fillSlots(t, cg, node, script, procs, plan.HeapMB)
			if n := cg.oomKills(t); n != 0 {
				t.Errorf("cgroup OOM killer ran %d times", n)
			}
			t.Logf("%d processes of --max-old-space-size=%d in %s: peak %s",
				procs, plan.HeapMB, FormatBytes(c.memory), cg.peak())
		})
	}
}

// fillSlots runs n filling node processes in the cgroup at once and checks
// each ends with V8's heap exhaustion.
func fillSlots(t *testing.T, cg memoryCgroup, node, script string, n, heapMB int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmds := make([]*exec.Cmd, n)
	stderr := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.CommandContext(ctx, "/bin/sh", "-c",
			`ulimit -c 0; echo $$ > "$1" && exec "$2" --max-old-space-size="$3" "$4"`,
			"sh", path.Join(cg.dir, "cgroup.procs"), node, strconv.Itoa(heapMB), script)
		stderr[i] = &bytes.Buffer{}
		cmds[i].Stderr = stderr[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatalf("start node: %v", err)
		}
	}
	for i, cmd := range cmds {
		err := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() && ws.Signal() == syscall.SIGABRT && strings.Contains(stderr[i].String(), "JavaScript heap out of memory") {
			continue
		}
		t.Errorf("worker %d: %v, want SIGABRT with \"JavaScript heap out of memory\"; stderr:\n%s", i, err, tail(stderr[i].String(), 400))
	}
}

// memoryCgroup is a memory cgroup created for one test.
type memoryCgroup struct {
	dir     string // host path
	version int
}

// newMemoryCgroup creates a memory cgroup limited to limit bytes, without
// swap, below the test process's own v1 memory cgroup or the v2 mount root.
// It skips the test when that is not possible and removes the cgroup when
// the test ends.
func newMemoryCgroup(t *testing.T, limit uint64) memoryCgroup {
	t.Helper()
	rd := &reader{root: "/"}
	h, ok := rd.discover().ctrl[ctrlMemory]
	if !ok {
		t.Skip("no memory cgroup controller is available")
	}
	parent := rd.levels(h)[0].dir
	if h.version == 2 {
		parent = h.mount
		if s, _ := rd.read(path.Join(parent, "cgroup.subtree_control")); !strings.Contains(s, "memory") {
			t.Skipf("memory controller not enabled in %s/cgroup.subtree_control", parent)
		}
	}
	cg := memoryCgroup{dir: path.Join(parent, fmt.Sprintf("percore-measure-%d", os.Getpid())), version: h.version}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		t.Skipf("cannot create a memory cgroup: %v", err)
	}
	t.Cleanup(func() { cg.remove(t) })
	limitFile, swapFile, swapValue := "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", strconv.FormatUint(limit, 10)
	if cg.version == 2 {
		limitFile, swapFile, swapValue = "memory.max", "memory.swap.max", "0"
	}
	if err := os.WriteFile(path.Join(cg.dir, limitFile), []byte(strconv.FormatUint(limit, 10)), 0o644); err != nil {
		t.Fatalf("set %s: %v", limitFile, err)
	}
	if err := os.WriteFile(path.Join(cg.dir, swapFile), []byte(swapValue), 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("set %s: %v", swapFile, err)
	}
	return cg
}

// remove deletes the cgroup once its processes are gone.
func (cg memoryCgroup) remove(t *testing.T) {
	var err error
	for range 50 {
		if err = os.Remove(cg.dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("remove cgroup: %v", err)
}

// oomKills returns how many processes the cgroup's OOM killer ended.
func (cg memoryCgroup) oomKills(t *testing.T) int {
	t.Helper()
	file := "memory.oom_control"
	if cg.version == 2 {
		file = "memory.events"
	}
	s := cg.stat(file)
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: bad oom_kill line %q", file, line)
			}
			return n
		}
	}
	t.Fatalf("%s has no oom_kill line: %q", file, s)
	return 0
}

// peak returns the cgroup's peak memory use, formatted.
func (cg memoryCgroup) peak() string {
	file := "memory.max_usage_in_bytes"
	if cg.version == 2 {
		file = "memory.peak"
	}
	n, err := strconv.ParseUint(cg.stat(file), 10, 64)
	if err != nil {
		return "unknown"
	}
	return FormatBytes(n)
}

// stat reads one of the cgroup's files, or returns "" when it cannot.
func (cg memoryCgroup) stat(file string) string {
	b, err := os.ReadFile(path.Join(cg.dir, file))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
