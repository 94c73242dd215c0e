//go:build linux

package supervisor

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestField(t *testing.T) {
	rollup := []byte("55a87865b000-7ffffb15b000 ---p 00000000 00:00 0   [rollup]\n" +
		"Rss:                1692 kB\nPss:                 238 kB\nPss_Dirty:           116 kB\n")
	for _, c := range []struct {
		data string
		name string
		want uint64
		ok   bool
	}{
		{string(rollup), "\nPss:", 238, true},
		{string(rollup), "\nRss:", 1692, true},
		{"Rss: 1 kB\nPss_Dirty: 5 kB\n", "\nPss:", 0, false},
		{"x\nPss:\n", "\nPss:", 0, false},
		{"x\nPss: many kB\n", "\nPss:", 0, false},
		{"x\nPss: 12", "\nPss:", 12, true},
	} {
		if got, ok := field([]byte(c.data), c.name); got != c.want || ok != c.ok {
			t.Errorf("field(%q, %q) = %d, %v; want %d, %v", c.data, c.name, got, ok, c.want, c.ok)
		}
	}
}

// startTree starts `sh -c SCRIPT` in its own process group, killed when
// the test ends, and waits until sh has n children of at least minRSS
// bytes each.
func startTree(t testing.TB, script string, n int, minRSS uint64) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		kids := appendChildren(nil, pid)
		grown := 0
		for _, k := range kids {
			if rssOf(k) >= minRSS {
				grown++
			}
		}
		if grown >= n {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("sh %d has %d children of %d MiB after 30s, want %d", pid, grown, minRSS>>20, n)
		}
	}
}

// rssOf is the RSS of pid and its descendants.
func rssOf(pid int) uint64 {
	return measureTree(pid, false).rss
}

// measureTree is treeMemory of pid and its descendants.
func measureTree(pid int, pss bool) treeUse {
	root, ok := readProc(pid)
	if !ok {
		return treeUse{}
	}
	_, u, _ := treeMemory(root, pss)
	return u
}

// treeWalk is a meter's walk of the tree below pid.
func treeWalk(pid int) func(pss bool) (treeUse, bool) {
	root, _ := readProc(pid)
	return func(pss bool) (treeUse, bool) {
		_, u, ok := treeMemory(root, pss)
		return u, ok
	}
}

const idleNode = `node -e "setInterval(() => {}, 1000)"`

// TestTreeMemoryCountsSharedPagesOnce: a worker's tree of sh and two
// node processes shares the node binary's code and the libraries. The
// sum of the processes' PSS counts each shared page once in all, well
// below the sum of their RSS, which counts it in each process (the guard's
// figure before); the walk finds all three processes.
func TestTreeMemoryCountsSharedPagesOnce(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	pid := startTree(t, idleNode+" & "+idleNode+"; wait", 2, 30<<20)
	root, ok := readProc(pid)
	if !ok {
		t.Fatalf("read process %d", pid)
	}
	tree, u, ok := treeMemory(root, true)
	t.Logf("sh and two node processes: PSS sum %.1f MiB, RSS sum %.1f MiB", float64(u.pss)/(1<<20), float64(u.rss)/(1<<20))
	if !ok || u.measure != MeasurePSS || len(tree) != 3 {
		t.Fatalf("treeMemory = %d processes, %+v, %v; want 3 and a PSS figure", len(tree), u, ok)
	}
	if u.pss == 0 || u.pss > u.rss*85/100 {
		t.Errorf("PSS sum %d bytes, RSS sum %d: want the PSS sum well below", u.pss, u.rss)
	}
	if _, rssOnly, _ := treeMemory(root, false); rssOnly.pss != 0 || rssOnly.measure != MeasureNone || rssOnly.rss == 0 {
		t.Errorf("a walk without PSS measured %+v", rssOnly)
	}
}

// BenchmarkTreeMemory measures the guard's sampling of a worker's tree:
// one PSS reading from smaps_rollup, one RSS reading from statm (all it
// read before), and the samples of one second near the budget (ten, one
// of them a PSS reading); for sh with two idle node processes, and for one
// node process holding 512 MiB of Buffers (smaps_rollup walks every
// resident page).
func BenchmarkTreeMemory(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip("node is not installed")
	}
	trees := []struct {
		name   string
		script string
		n      int
		min    uint64
	}{
		{"sh+2node", idleNode + " & " + idleNode + "; wait", 2, 30 << 20},
		{"node512MiB", `node -e "const k = []; for (let i = 0; i < 128; i++) k.push(Buffer.alloc(4 << 20, 1)); setInterval(() => k.length, 1000)"; true`, 1, 500 << 20},
	}
	for _, tr := range trees {
		pid := startTree(b, tr.script, tr.n, tr.min)
		walk := treeWalk(pid)
		b.Run(tr.name+"/pss", func(b *testing.B) {
			for b.Loop() {
				walk(true)
			}
		})
		b.Run(tr.name+"/statm", func(b *testing.B) {
			for b.Loop() {
				walk(false)
			}
		})
		// One second of a worker near its budget: a sample every 100 ms,
		// one of them a PSS reading (with its RSS), nine of them estimates.
		b.Run(tr.name+"/near-budget-second", func(b *testing.B) {
			var mt meter
			at := time.Now()
			for b.Loop() {
				for i := range 10 {
					mt.read(1, at.Add(time.Duration(i)*100*time.Millisecond), 950*time.Millisecond, walk)
				}
				at = at.Add(time.Second)
			}
		})
	}
}

// TestMeterEstimatesPSSBetweenReadings: between two PSS readings the
// meter's figure is the tree's RSS less the shared pages' excess, close to
// the PSS; a reading of another worker, or an older one, reads PSS again.
func TestMeterEstimatesPSSBetweenReadings(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	pid := startTree(t, idleNode+" & "+idleNode+"; wait", 2, 30<<20)
	walk := treeWalk(pid)
	var mt meter
	now := time.Now()
	r, ok := mt.read(1, now, time.Second, walk)
	full := r.mem
	if !ok || r.measure != MeasurePSS || mt.at != now {
		t.Fatalf("first read: %+v, %v; meter %+v", r, ok, mt)
	}
	r, ok = mt.read(1, now.Add(500*time.Millisecond), time.Second, walk)
	est, measure := r.mem, r.measure
	rss := rssOf(pid)
	t.Logf("PSS %.1f MiB, estimate %.1f MiB, RSS %.1f MiB", float64(full)/(1<<20), float64(est)/(1<<20), float64(rss)/(1<<20))
	if !ok || measure != MeasurePSS || mt.at != now || est > full+full/10 || est < full-full/10 {
		t.Errorf("estimate %d by %s, %v (meter %+v), want within 10%% of the PSS %d", est, measure, ok, mt, full)
	}
	mt.read(1, now.Add(time.Second), time.Second, walk)
	if !mt.at.Equal(now.Add(time.Second)) {
		t.Errorf("a reading a second later was an estimate: %+v", mt)
	}
	mt.read(2, now.Add(time.Second+time.Millisecond), time.Second, walk)
	if mt.key != 2 || !mt.at.Equal(now.Add(time.Second+time.Millisecond)) {
		t.Errorf("another worker's reading was an estimate: %+v", mt)
	}
}
