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
// memory cgroup with a node (and, when installed, deno) process that
// allocates until its heap is full, and checks that V8 stops each one
// ("JavaScript heap out of memory", SIGABRT) before the kernel's OOM killer
// has to. The limit is set on a parent of the processes' cgroup, where V8
// does not see it, so the young generation is the one the plan passes.
func TestHeapOOMBeforeCgroupOOM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes; skipped with -short")
	}
	script := filepath.Join(t.TempDir(), "fill.cjs")
	if err := os.WriteFile(script, []byte(fillScript), 0o644); err != nil {
		t.Fatal(err)
	}
	runtimes := map[string]func(p Plan) []string{}
	if node, err := exec.LookPath("node"); err == nil {
		runtimes["node"] = func(p Plan) []string {
			return []string{node, "--max-old-space-size=" + strconv.Itoa(p.HeapMB),
				"--max-semi-space-size=" + strconv.Itoa(p.SemiSpaceMB), script}
		}
	}
	if deno, err := exec.LookPath(filepath.Join("..", ".tools", "bin", "deno")); err == nil {
		runtimes["deno"] = func(p Plan) []string {
			return []string{deno, "run", fmt.Sprintf("--v8-flags=--max-old-space-size=%d,--max-semi-space-size=%d", p.HeapMB, p.SemiSpaceMB), script}
		}
	}
	if len(runtimes) == 0 {
		t.Skip("neither node nor deno is installed")
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
		for name, command := range runtimes {
			t.Run(name+"/"+FormatBytes(c.memory), func(t *testing.T) {
				plan := NewPlan(Resources{CPUs: c.cpus, Memory: c.memory}, Request{Memory: HeapCap, SemiSpace: true})
				if plan.Workers != c.workers {
					t.Fatalf("plan has %d workers, want %d: %+v", plan.Workers, c.workers, plan)
				}
				procs := plan.Workers
				if plan.SpareSlot {
					procs++
				}
				cg := newMemoryCgroup(t, c.memory)
				child := cg.child(t)
				peakRSS := fillSlots(t, child, command(plan), procs)
				if n := cg.oomKills(t); n != 0 {
					t.Errorf("cgroup OOM killer ran %d times", n)
				}
				t.Logf("%d %s processes of old space %dMiB + young %dMiB (budget %s) in %s: cgroup peak %s, highest process peak RSS %s",
					procs, name, plan.HeapMB, plan.YoungGenMB(), FormatBytes(plan.WorkerBudget), FormatBytes(c.memory), cg.peak(), FormatBytes(peakRSS))
			})
		}
	}
}

// fillSlots runs n filling processes of argv in the cgroup at once, checks
// each ends with V8's heap exhaustion, and returns the highest peak RSS.
func fillSlots(t *testing.T, cg memoryCgroup, argv []string, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmds := make([]*exec.Cmd, n)
	stderr := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c",
			`ulimit -c 0; echo $$ > "$0" && exec "$@"`, path.Join(cg.dir, "cgroup.procs")}, argv...)...)
		stderr[i] = &bytes.Buffer{}
		cmds[i].Stderr = stderr[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatalf("start %s: %v", argv[0], err)
		}
	}
	var peak uint64
	for i, cmd := range cmds {
		err := cmd.Wait()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, uint64(ru.Maxrss)*1024)
		}
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() && (ws.Signal() == syscall.SIGABRT || ws.Signal() == syscall.SIGTRAP || ws.Signal() == syscall.SIGILL) &&
			(strings.Contains(stderr[i].String(), "JavaScript heap out of memory") || strings.Contains(stderr[i].String(), "Fatal JavaScript out of memory")) {
			continue
		}
		t.Errorf("worker %d: %v, want V8's abort with \"JavaScript heap out of memory\" (node) or \"Fatal JavaScript out of memory\" (deno); stderr:\n%s", i, err, tail(stderr[i].String(), 400))
	}
	return peak
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

// child creates a cgroup without a limit of its own below cg, removed when
// the test ends.
func (cg memoryCgroup) child(t *testing.T) memoryCgroup {
	t.Helper()
	c := memoryCgroup{dir: path.Join(cg.dir, "child"), version: cg.version}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatalf("create child cgroup: %v", err)
	}
	t.Cleanup(func() { c.remove(t) })
	return c
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
