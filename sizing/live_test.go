package sizing

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
)

// cgroupRes is a machine limited by a cgroup to cpus and memMiB.
func cgroupRes(cpus int, memMiB uint64) machine.Resources {
	return machine.Resources{CPUs: cpus, CPUQuota: float64(cpus), CPUSource: "cgroup v1 cpu.cfs_quota_us",
		Memory: memMiB * machine.MiB, MemorySource: "cgroup v1 memory.limit_in_bytes", Cgroup: "v1"}
}

func nodePlanner() Planner {
	return Planner{Runtime: jsruntime.Node(), Runtimes: jsruntime.Default(), Command: []string{"node", "app.js"}}
}

// changes records what Live applies.
type changes struct {
	mu   sync.Mutex
	list []Change
}

func (c *changes) apply(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, ch)
}

func (c *changes) all() []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Change(nil), c.list...)
}

// A scale beyond the first plan's count sizes the heaps for the new count:
// in 512 MiB, three workers get 86 MiB heaps, not the two-worker 147.
func TestScalePlansTheHeapsForTheNewCount(t *testing.T) {
	var got changes
	live, err := NewLive(LiveConfig{Planner: nodePlanner(), Apply: got.apply}, cgroupRes(2, 512))
	if err != nil {
		t.Fatal(err)
	}
	if p := live.Plan(); p.Workers != 2 || p.RuntimeHeapMB != 147 {
		t.Fatalf("first plan: %d workers, heap %d MiB; want 2 and 147", p.Workers, p.RuntimeHeapMB)
	}
	p, err := live.Scale(3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Workers != 3 || p.RuntimeHeapMB != 86 || p.WorkersReason != "scale" {
		t.Errorf("after scale: %d workers (%s), heap %d MiB; want 3 (scale), 86", p.Workers, p.WorkersReason, p.RuntimeHeapMB)
	}
	chs := got.all()
	if len(chs) != 1 {
		t.Fatalf("%d changes applied, want 1", len(chs))
	}
	if want := "workers 2→3, heap 147→86MiB"; !strings.HasPrefix(chs[0].Diff, want) || chs[0].Why != "scale" {
		t.Errorf("change %q (%s), want it to start %q (scale)", chs[0].Diff, chs[0].Why, want)
	}
	if !NeedsNewWorkers(chs[0].From, chs[0].To) {
		t.Error("new heap flags do not ask for new workers")
	}
	if last := live.Last(); last.Diff != chs[0].Diff || last.At.IsZero() {
		t.Errorf("Last = %+v", last)
	}
}

// A limit changed under a running percore is followed: the new memory and
// CPUs give a new plan; the same limits read again change nothing.
func TestRefreshFollowsTheLimits(t *testing.T) {
	var got changes
	var mu sync.Mutex
	res := cgroupRes(1, 1024)
	detect := func() (machine.Resources, error) {
		mu.Lock()
		defer mu.Unlock()
		return res, nil
	}
	live, err := NewLive(LiveConfig{Planner: nodePlanner(), Detect: detect, Apply: got.apply, Follow: true,
		Every: 10 * time.Millisecond}, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Refresh("test"); err != nil || len(got.all()) != 0 {
		t.Fatalf("unchanged limits: %v, %d changes", err, len(got.all()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	mu.Lock()
	res = cgroupRes(2, 512)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for len(got.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	chs := got.all()
	if len(chs) != 1 {
		t.Fatalf("%d changes, want 1", len(chs))
	}
	want := "cpus 1→2, memory 1.0GiB→512MiB, workers 1→2, heap"
	if !strings.HasPrefix(chs[0].Diff, want) || chs[0].Why != "cgroup limits changed" {
		t.Errorf("change %q (%s), want it to start %q", chs[0].Diff, chs[0].Why, want)
	}
	if p := live.Plan(); p.Workers != 2 || p.RuntimeHeapMB != 147 || p.GuardBudget != p.WorkerBudget {
		t.Errorf("plan after the change: %d workers, heap %d, guard %d MiB", p.Workers, p.RuntimeHeapMB, p.GuardBudget>>20)
	}
}

// A scale that does not fit the memory is allowed, with the plan's warning,
// as --workers is at start.
func TestScaleBeyondTheMemoryWarns(t *testing.T) {
	live, err := NewLive(LiveConfig{Planner: nodePlanner()}, cgroupRes(2, 512))
	if err != nil {
		t.Fatal(err)
	}
	p, err := live.Scale(6)
	if err != nil {
		t.Fatal(err)
	}
	if p.Workers != 6 || len(p.Warnings) == 0 || !strings.Contains(strings.Join(p.Warnings, "; "), "does not fit") {
		t.Errorf("6 workers in 512 MiB: %d workers, warnings %q", p.Workers, p.Warnings)
	}
}
