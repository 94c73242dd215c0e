//go:build linux

package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/health"
	"github.com/percore/percore/internal/testutil"
)

// workerHeaps returns the --max-old-space-size flag of each ready worker,
// read from /proc/PID/cmdline, by pid.
func workerHeaps(st health.Status) map[int]string {
	out := map[int]string{}
	for _, w := range st.Workers {
		if !w.Ready || w.PID == 0 {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", w.PID))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(data), "\x00") {
			if v, ok := strings.CutPrefix(arg, "--max-old-space-size="); ok {
				out[w.PID] = v
			}
		}
	}
	return out
}

// awaitHeaps waits until n workers are ready, each started with heap MiB
// of old space, and returns the last status read.
func awaitHeaps(t *testing.T, in *instance, n int, heap string, within time.Duration) health.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := getStatus(t, in)
		heaps := workerHeaps(st)
		ok := len(heaps) == n && len(st.Workers) == n
		for _, h := range heaps {
			ok = ok && h == heap
		}
		if ok {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: workers' heaps %v (of %d workers), want %d workers with --max-old-space-size=%s",
				within, heaps, len(st.Workers), n, heap)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logged reports whether a log line so far starts with prefix and holds
// part.
func (in *instance) logged(prefix, part string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.seen {
		if s, _ := m["@message"].(string); strings.HasPrefix(s, prefix) && strings.Contains(s, part) {
			return true
		}
	}
	return false
}

// lightLoad sends a GET every 20 ms until stop is closed, and counts them.
type lightLoad struct {
	sent, failed atomic.Int64
	stop         chan struct{}
	done         sync.WaitGroup
	mu           sync.Mutex
	errs         []string
}

func startLightLoad(url string) *lightLoad {
	l := &lightLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			l.sent.Add(1)
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					continue
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			l.failed.Add(1)
			l.mu.Lock()
			if len(l.errs) < 5 {
				l.errs = append(l.errs, err.Error())
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *lightLoad) end() (sent, failed int64, errs []string) {
	close(l.stop)
	l.done.Wait()
	return l.sent.Load(), l.failed.Load(), l.errs
}

// A scale in a 512 MiB cgroup plans the heaps for the new count: the third
// worker, and the two before it once replaced, run with the 3-worker heap,
// and /status shows the new plan.
func TestScaleUpPlansTheHeapsAgain(t *testing.T) {
	needNode(t)
	mem := testutil.NewMemoryCgroup(t, 512<<20)
	cpu := testutil.NewCPUCgroup(t, 2)
	in := launchVia(t, testutil.JoinBoth(mem, cpu), "--control", "off", "--", "node", "testdata/heap.js")
	awaitHeaps(t, in, 2, "147", 60*time.Second)
	load := startLightLoad("http://" + in.addr + "/")
	in.signal(syscall.SIGTTIN)
	line := in.findLog("plan: workers 2→3", 20*time.Second)["@message"].(string)
	if !strings.Contains(line, "heap 147→86MiB") {
		t.Errorf("plan change logged as %q, want the heap 147→86MiB in it", line)
	}
	st := awaitHeaps(t, in, 3, "86", 90*time.Second)
	sent, failed, errs := load.end()
	if st.Plan.Workers != 3 || st.Plan.HeapMB != 86 || st.Plan.Changed == nil || st.Plan.Changed.Why != "scale" {
		t.Errorf("/status plan: workers %d, heap %d, changed %+v; want 3, 86, a scale", st.Plan.Workers, st.Plan.HeapMB, st.Plan.Changed)
	}
	t.Logf("light load during the scale: %d requests, %d failed %v", sent, failed, errs)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the scale: %v", failed, sent, errs)
	}
	if n, err := mem.OOMKills(); err != nil || n != 0 {
		t.Errorf("kernel OOM kills: %d (%v)", n, err)
	}
}

// Limits changed under a running percore are followed within seconds: 1 GiB
// and 1 CPU become 512 MiB and 2 CPUs, the new plan is logged and in
// /status, and the workers are replaced with the new heap flags while a
// light load loses nothing.
func TestPlanFollowsChangedLimits(t *testing.T) {
	needNode(t)
	mem := testutil.NewMemoryCgroup(t, 1<<30)
	cpu := testutil.NewCPUCgroup(t, 1)
	in := launchVia(t, testutil.JoinBoth(mem, cpu), "--control", "off", "--", "node", "testdata/heap.js")
	awaitHeaps(t, in, 1, "339", 60*time.Second)
	load := startLightLoad("http://" + in.addr + "/")
	if err := mem.SetLimit(512 << 20); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetQuota(2); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for {
		st := getStatus(t, in)
		if st.Plan.MemoryBytes == 512<<20 && st.Plan.CPUs == 2 && st.Plan.Workers == 2 {
			break
		}
		if time.Since(changed) > 20*time.Second {
			t.Fatalf("/status plan after 20 s: %+v", st.Plan)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(changed)
	t.Logf("the new plan is in /status %v after the limits changed", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the new plan took %v, want it within a few seconds (limits are read every 2 s)", took)
	}
	for _, want := range []string{"memory 1.0GiB→512MiB", "workers 1→2", "cpus 1→2"} {
		if !in.logged("plan: ", want) {
			t.Errorf("no plan line says %q; logs:\n%s", want, in.logs.String())
		}
	}
	st := awaitHeaps(t, in, 2, "147", 90*time.Second)
	sent, failed, errs := load.end()
	if st.Plan.MemoryBytes != 512<<20 || st.Plan.CPUs != 2 || st.Plan.Changed == nil || st.Plan.Changed.Why != "cgroup limits changed" {
		t.Errorf("/status plan: memory %d, cpus %d, changed %+v", st.Plan.MemoryBytes, st.Plan.CPUs, st.Plan.Changed)
	}
	t.Logf("light load during the change: %d requests, %d failed %v", sent, failed, errs)
	if failed > 0 {
		t.Errorf("%d of %d requests failed: %v", failed, sent, errs)
	}
	if n, err := mem.OOMKills(); err != nil || n != 0 {
		t.Errorf("kernel OOM kills: %d (%v)", n, err)
	}
}
