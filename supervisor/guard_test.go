package supervisor

import (
	"fmt"
	"math"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestGuardDecide(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 227 * mib, Hard: 259 * mib}
	for _, c := range []struct {
		rss, at uint64
		want    guardAction
	}{
		{0, 227 * mib, guardNone},
		{100 * mib, 227 * mib, guardNone},
		{227 * mib, 227 * mib, guardNone},
		{227*mib + 1, 227 * mib, guardRecycle},
		{259 * mib, 227 * mib, guardRecycle},
		{259*mib + 1, 227 * mib, guardKill},
		{1 << 40, 227 * mib, guardKill},
		// Recycled early: above the RSS recycleAt gave, below the budget.
		{150 * mib, 160 * mib, guardNone},
		{161 * mib, 160 * mib, guardRecycle},
		// at is never above the budget.
		{228 * mib, 1 << 40, guardRecycle},
	} {
		if got := g.decide(c.rss, c.at); got != c.want {
			t.Errorf("decide(%d MiB, at %d MiB) = %s, want %s", c.rss/mib, c.at/mib, got, c.want)
		}
	}
	if got := (Guard{}).decide(1<<40, 0); got != guardNone {
		t.Errorf("an off guard decided %s", got)
	}
}

// TestGuardRecycleAt checks the RSS at which a growing worker is recycled:
// Budget - rate × lead, so that the old worker is gone when it would reach
// the budget, never below EarliestPercent of the budget.
func TestGuardRecycleAt(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 313 * mib, Hard: 327 * mib}
	for _, c := range []struct {
		name string
		rate float64 // MiB/s
		lead time.Duration
		want uint64
	}{
		{"not growing", 0, 2 * time.Second, 313 * mib},
		{"shrinking", -50, 2 * time.Second, 313 * mib},
		{"20 MiB/s, replacement ready in 1.3s, 0.3s drain, 0.1s late", 20, 1700 * time.Millisecond, 279 * mib},
		{"80 MiB/s, the same", 80, 1700 * time.Millisecond, 177 * mib},
		{"80 MiB/s, a quick replacement", 80, 750 * time.Millisecond, 253 * mib},
		{"300 MiB/s: half the budget at the earliest", 300, 1700 * time.Millisecond, 156*mib + 512*1024},
		{"no lead", 80, 0, 313 * mib},
	} {
		got := g.recycleAt(c.rate*mib, c.lead)
		if diff := int64(got) - int64(c.want); diff > mib/2 || diff < -mib/2 {
			t.Errorf("%s: recycleAt = %.1f MiB, want %.1f MiB", c.name, float64(got)/mib, float64(c.want)/mib)
		}
	}
	// At 80 MiB/s with a 1.7 s lead, a worker recycled at that RSS is gone
	// before it reaches the budget, and its hard limit 14 MiB above.
	at := g.recycleAt(80*mib, 1700*time.Millisecond)
	if gone := float64(at) + 80*mib*1.7; gone > float64(g.Budget)+1 {
		t.Errorf("recycled at %d MiB, it reaches %.0f MiB by the time it is gone", at/mib, gone/mib)
	}
}

func TestGuardInterval(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 200 * mib, Hard: 232 * mib, Every: time.Second}
	g.setDefaults()
	for _, c := range []struct {
		rss, at uint64
		rate    float64 // MiB/s
		want    time.Duration
	}{
		{0, 200 * mib, 0, time.Second},
		{150 * mib, 200 * mib, 0, time.Second}, // 75 %: not above
		{151 * mib, 200 * mib, 0, DefaultGuardNear},
		{300 * mib, 200 * mib, 0, DefaultGuardNear},
		// Growing: sampled fast when a sample a second later could come
		// after the RSS at which it is recycled.
		{60 * mib, 150 * mib, 80, time.Second},
		{60 * mib, 140 * mib, 80, DefaultGuardNear},
		{60 * mib, 200 * mib, 200, DefaultGuardNear},
	} {
		if got := g.interval(c.rss, c.at, c.rate*mib); got != c.want {
			t.Errorf("interval(%d MiB, at %d MiB, %v MiB/s) = %s, want %s", c.rss/mib, c.at/mib, c.rate, got, c.want)
		}
	}
	// A steady 70 MiB/s growth is seen between the budget and the hard
	// limit: it moves 7 MiB between two samples once near the budget.
	if step := uint64(70*mib) * uint64(g.Near) / uint64(time.Second); step >= g.Hard-g.Budget {
		t.Errorf("70 MiB/s moves %d MiB per sample, past a %d MiB margin", step/mib, (g.Hard-g.Budget)/mib)
	}
	if off := (Guard{Every: time.Second, Near: time.Millisecond}); off.interval(1<<40, 0, 1e9) != time.Second {
		t.Error("an off guard samples fast")
	}
}

func TestGuardDrainNow(t *testing.T) {
	g := Guard{Budget: 313 * mib, Hard: 327 * mib, Every: time.Second}
	g.setDefaults() // Drain 300ms, Near 100ms: 0.4s
	for _, c := range []struct {
		rss  uint64  // MiB
		rate float64 // MiB/s
		want bool
	}{
		{250, 80, false},
		{294, 80, false},
		{296, 80, true},
		{320, 0, false},
		{327, 0, true},
		{200, 400, true},
	} {
		if got := g.drainNow(c.rss*mib, c.rate*mib); got != c.want {
			t.Errorf("drainNow(%d MiB, %v MiB/s) = %v, want %v", c.rss, c.rate, got, c.want)
		}
	}
	if (Guard{Budget: 313 * mib, Hard: math.MaxUint64}).drainNow(1<<40, 1e9) {
		t.Error("a guard without a hard limit stops a worker early")
	}
}

func TestGuardReasons(t *testing.T) {
	g := Guard{Budget: 227 << 20, Hard: 259 << 20}
	if got, want := g.overBudget(233<<20), "memory: rss 233MiB over budget 227MiB"; got != want {
		t.Errorf("overBudget = %q, want %q", got, want)
	}
	if got := g.overHard(300 << 20); !strings.HasPrefix(got, "memory: rss 300MiB over hard limit 259MiB") {
		t.Errorf("overHard = %q", got)
	}
	got, want := g.recycleReason(180<<20, 80<<20, 1640*time.Millisecond),
		"memory: rss 180MiB growing 80MiB/s, recycled early to be gone before budget 227MiB (lead 1.64s)"
	if got != want {
		t.Errorf("recycleReason below the budget = %q, want %q", got, want)
	}
	if got := g.recycleReason(233<<20, 80<<20, time.Second); got != g.overBudget(233<<20) {
		t.Errorf("recycleReason above the budget = %q", got)
	}
}

// orderLauncher records process starts and exits in the order they happen.
type orderLauncher struct {
	inner  Launcher
	mu     sync.Mutex // protects events
	events []string
	wg     sync.WaitGroup
}

func (l *orderLauncher) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *orderLauncher) Start(cmd *exec.Cmd) (int, <-chan Exit, error) {
	pid, exit, err := l.inner.Start(cmd)
	if err != nil {
		return pid, exit, err
	}
	l.note("start %d", pid)
	out := make(chan Exit, 1)
	l.wg.Add(1)
	go l.forward(pid, exit, out)
	return pid, out, nil
}

func (l *orderLauncher) forward(pid int, in <-chan Exit, out chan<- Exit) {
	defer l.wg.Done()
	e := <-in
	l.note("exit %d", pid)
	out <- e
}

func (l *orderLauncher) order() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// recycleOrder runs one hog above its budget until it was recycled once,
// and returns the first three process events.
func recycleOrder(t *testing.T, spare bool) []string {
	var l *orderLauncher
	rig := newRig(t, "hog", 1, func(c *Config) {
		l = &orderLauncher{inner: c.Launcher}
		t.Cleanup(l.wg.Wait) // after the rig's cleanup has stopped the workers
		c.Launcher = l
		c.Guard = Guard{Budget: 64 << 20, Hard: 1 << 40}
		c.SpareSlot = spare
		c.SampleInterval = 100 * time.Millisecond
	}, "FAKE_HOG_MB=100")
	rig.waitAdded(t)
	rig.waitAdded(t) // the replacement
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ws := rig.sup.Snapshot()[0]
		if ws.Replaced >= 1 && len(l.order()) >= 3 {
			if !strings.HasPrefix(ws.LastReason, "memory: rss ") || ws.Restarts != 0 {
				t.Errorf("status after the recycle: %+v", ws)
			}
			return l.order()[:3]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not recycled: %+v, events %v", rig.sup.Snapshot()[0], l.order())
	return nil
}

func TestRecycleWithoutSpareSlotStopsFirst(t *testing.T) {
	ev := recycleOrder(t, false)
	if !strings.HasPrefix(ev[0], "start") || !strings.HasPrefix(ev[1], "exit") || !strings.HasPrefix(ev[2], "start") {
		t.Errorf("events %v, want start, exit of the old worker, then start of the new", ev)
	}
}

func TestRecycleWithSpareSlotStartsFirst(t *testing.T) {
	ev := recycleOrder(t, true)
	if !strings.HasPrefix(ev[0], "start") || !strings.HasPrefix(ev[1], "start") || !strings.HasPrefix(ev[2], "exit") {
		t.Errorf("events %v, want two starts, then the old worker's exit", ev)
	}
}

func TestWorkerAboveHardLimitIsKilled(t *testing.T) {
	rig := newRig(t, "hog", 1, func(c *Config) {
		c.MaxBootFailures = 100
		c.Guard = Guard{Budget: 32 << 20, Hard: 64 << 20}
		c.SampleInterval = 100 * time.Millisecond
	}, "FAKE_HOG_MB=100")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// A sample taken while the hog still grows may recycle it first;
		// its replacement hogs the same.
		snap := rig.sup.Snapshot()
		if len(snap) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ws := snap[0]
		if ws.LastExit != nil && strings.Contains(ws.LastReason, "over hard limit 64MiB") {
			if ws.LastExit.Signal != syscall.SIGKILL {
				t.Errorf("last exit %v, want SIGKILL", ws.LastExit)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker above the hard limit still runs: %+v", rig.sup.Snapshot())
}
