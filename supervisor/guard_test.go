package supervisor

import (
	"context"
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
		// after the memory at which it is recycled.
		{60 * mib, 150 * mib, 80, time.Second},
		{60 * mib, 140 * mib, 80, DefaultGuardNear},
		{60 * mib, 200 * mib, 200, DefaultGuardNear},
		// Or when it could pass NearPercent of the budget by then, at
		// that pace: it would not be seen between there and its budget.
		{100 * mib, 200 * mib, 8, time.Second},       // 108 MiB by the next sample
		{100 * mib, 200 * mib, 80, DefaultGuardNear}, // 180 MiB, past 75 % of 200
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
		mem  uint64  // MiB
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
		if got := g.drainNow(c.mem*mib, c.rate*mib); got != c.want {
			t.Errorf("drainNow(%d MiB, %v MiB/s) = %v, want %v", c.mem, c.rate, got, c.want)
		}
	}
	if (Guard{Budget: 313 * mib, Hard: math.MaxUint64}).drainNow(1<<40, 1e9) {
		t.Error("a guard without a hard limit stops a worker early")
	}
}

func TestGuardReasons(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 227 * mib, Hard: 259 * mib}
	for _, c := range []struct {
		rss  uint64
		want string
	}{
		{233 * mib, "memory: rss 233.0MiB over budget 227.0MiB"},
		{227*mib + 410<<10, "memory: rss 227.4MiB over budget 227.0MiB"},
		// Over by less than a tenth of a MiB, or of a KiB: never shown as equal.
		{227*mib + 1<<10, "memory: rss 232449.0KiB over budget 232448.0KiB"},
		{227*mib + 1, "memory: rss 238026753B over budget 238026752B"},
	} {
		if got := g.overBudget(c.rss, MeasureRSS); got != c.want {
			t.Errorf("overBudget(%d) = %q, want %q", c.rss, got, c.want)
		}
	}
	if got := g.overHard(300*mib, MeasureRSS); got != "memory: rss 300.0MiB over hard limit 259.0MiB, killed" {
		t.Errorf("overHard = %q", got)
	}
	if got := g.overBudget(233*mib, MeasurePSS); got != "memory: pss 233.0MiB over budget 227.0MiB" {
		t.Errorf("overBudget by PSS = %q", got)
	}
	if got := loopReason(g.overBudget(233*mib, MeasurePSS), 1234*time.Millisecond); got != "memory loop: pss 233.0MiB over budget 227.0MiB 1.23s after ready" {
		t.Errorf("loopReason = %q", got)
	}
	got, want := g.recycleReason(180*mib+100<<10, MeasurePSS, 80*mib, 1640*time.Millisecond),
		"memory: pss 180.1MiB growing 80.0MiB/s, recycled early to be gone before budget 227.0MiB (lead 1.64s)"
	if got != want {
		t.Errorf("recycleReason below the budget = %q, want %q", got, want)
	}
	if got := g.recycleReason(233*mib, MeasurePSS, 80*mib, time.Second); got != g.overBudget(233*mib, MeasurePSS) {
		t.Errorf("recycleReason above the budget = %q", got)
	}
	if got, want := g.beforeHard(250*mib, MeasurePSS, 80*mib), "memory: pss 250.0MiB growing 80.0MiB/s would reach the hard limit 259.0MiB before its replacement is ready"; got != want {
		t.Errorf("beforeHard = %q, want %q", got, want)
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
		// The slot counts a replacement first started at its takeover, and
		// records the old worker's exit when it comes.
		ws := rig.sup.Snapshot()[0]
		if ws.Replaced >= 1 && ws.LastExit != nil && len(l.order()) >= 3 {
			// The replacement, as far over its budget, may be recycled
			// already, as a memory loop.
			ends, _ := rig.sup.Counts()
			if !strings.HasPrefix(ws.LastReason, "memory") || ends[EndMaxMemory] != 1 ||
				ends["crash"]+ends["boot failure"] != 0 {
				t.Errorf("status after the recycle: %+v, ends %v", ws, ends)
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
		if ws.LastExit != nil && strings.Contains(ws.LastReason, "over hard limit 64.0MiB") {
			if ws.LastExit.Signal != syscall.SIGKILL {
				t.Errorf("last exit %v, want SIGKILL", ws.LastExit)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker above the hard limit still runs: %+v", rig.sup.Snapshot())
}

// hogFootprint is the memory a fake worker holding 16 MiB uses once
// ready, as the guard measures it; the worker is stopped before it returns.
func hogFootprint(t *testing.T) uint64 {
	t.Helper()
	rig := newRig(t, "hog", 1, nil, "FAKE_HOG_MB=16")
	rig.waitAdded(t)
	time.Sleep(200 * time.Millisecond) // settled a little; only a rough figure is needed
	mem, ok := uint64(0), false
	if f := rig.sup.fams.byKey(rig.sup.fams.keyFor(rig.sup.Snapshot()[0].Key)); f != nil {
		var u treeUse
		u, ok = rig.sup.fams.sample(f, true)
		mem = u.pss
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rig.sup.Stop(ctx)
	rig.errc <- <-rig.errc // for the rig's cleanup
	if !ok {
		t.Skip("cannot measure a worker's memory here")
	}
	return mem
}

// TestMemoryLoopIsBackedOffAndWarned: a worker that sits some MiB over
// its memory budget from its start is recycled, and so is each
// replacement. From the second on it is a memory loop: each recycling
// waits the slot's backoff, doubling, is logged at WARN with the figures
// and what to do, and is counted as "memory loop". Before, each was
// recycled at once, silently, without end.
func TestMemoryLoopIsBackedOffAndWarned(t *testing.T) {
	// About 8 MiB over the budget: less than half-way to the hard limit,
	// whatever the pages shared with the test binary add or take.
	budget := hogFootprint(t) - 8<<20
	rig := newRig(t, "hog", 1, func(c *Config) {
		c.Guard = Guard{Budget: budget, Hard: budget + 64<<20}
		c.SampleInterval = 100 * time.Millisecond
		c.BackoffMin, c.BackoffMax = 200*time.Millisecond, 2*time.Second
	}, "FAKE_HOG_MB=16")
	const loops = 3
	deadline := time.Now().Add(60 * time.Second)
	for {
		ends, _ := rig.sup.Counts()
		if ends[EndMemoryLoop] >= loops && rig.sup.Snapshot()[0].Restarts >= loops {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d memory loops within 60s (ends %v): %+v", ends[EndMemoryLoop], ends, rig.sup.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ends, _ := rig.sup.Counts()
	if ends[EndMaxMemory] != 1 {
		t.Errorf("ends %v, want one plain max-memory recycling before the loop", ends)
	}
	ws := rig.sup.Snapshot()[0]
	if !strings.HasPrefix(ws.LastReason, "memory loop: ") || ws.Restarts < loops {
		t.Errorf("status after %d loops: %+v", loops, ws)
	}
	var backoffs []string
	for _, line := range strings.Split(rig.log.String(), "\n") {
		if strings.Contains(line, "[WARN]") && strings.Contains(line, "memory loop:") {
			for _, want := range []string{"budget=", "served=", "--max-memory", "fewer --workers"} {
				if !strings.Contains(line, want) {
					t.Errorf("the warning lacks %q: %s", want, line)
				}
			}
			if _, b, ok := strings.Cut(line, "backoff="); ok {
				backoffs = append(backoffs, strings.Fields(b)[0])
			}
		}
	}
	if len(backoffs) < loops || backoffs[0] != "200ms" || backoffs[1] != "400ms" || backoffs[2] != "800ms" {
		t.Errorf("the warnings' backoffs %v, want 200ms, 400ms, 800ms", backoffs)
	}
}
