//go:build linux

package sizing

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
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
		{512 * machine.MiB, 2, 2},
		{256 * machine.MiB, 1, 1},
		{1024 * machine.MiB, 2, 2},
	} {
		for name, command := range runtimes {
			t.Run(name+"/"+machine.FormatBytes(c.memory), func(t *testing.T) {
				plan := NewPlan(machine.Resources{CPUs: c.cpus, Memory: c.memory}, Request{Memory: jsruntime.HeapCap, SemiSpace: true})
				if plan.Workers != c.workers {
					t.Fatalf("plan has %d workers, want %d: %+v", plan.Workers, c.workers, plan)
				}
				procs := plan.Workers
				if plan.SpareSlot {
					procs++
				}
				cg := testutil.NewMemoryCgroup(t, int64(c.memory))
				peakRSS := fillSlots(t, cg.Child(t), command(plan), procs)
				if n, err := cg.OOMKills(); err != nil || n != 0 {
					t.Errorf("cgroup OOM killer ran %d times (%v)", n, err)
				}
				peak, _ := cg.Peak()
				t.Logf("%d %s processes of old space %dMiB + young %dMiB (budget %s) in %s: cgroup peak %s, highest process peak RSS %s",
					procs, name, plan.HeapMB, plan.YoungGenMB(), machine.FormatBytes(plan.WorkerBudget), machine.FormatBytes(c.memory), machine.FormatBytes(peak), machine.FormatBytes(peakRSS))
			})
		}
	}
}

// fillSlots runs n filling processes of argv in the cgroup at once, checks
// each ends with V8's heap exhaustion, and returns the highest peak RSS.
func fillSlots(t *testing.T, cg testutil.MemoryCgroup, argv []string, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmds := make([]*exec.Cmd, n)
	stderr := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c",
			`ulimit -c 0; echo $$ > "$0/cgroup.procs" && exec "$@"`, cg.Dir}, argv...)...)
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

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
