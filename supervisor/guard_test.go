package supervisor

import (
	"context"
	"fmt"
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
		rss  uint64
		want guardAction
	}{
		{0, guardNone},
		{100 * mib, guardNone},
		{227 * mib, guardNone},
		{227*mib + 1, guardRecycle},
		{259 * mib, guardRecycle},
		{259*mib + 1, guardKill},
		{1 << 40, guardKill},
	} {
		if got := g.decide(c.rss); got != c.want {
			t.Errorf("decide(%d MiB) = %s, want %s", c.rss/mib, got, c.want)
		}
	}
	if got := (Guard{}).decide(1 << 40); got != guardNone {
		t.Errorf("an off guard decided %s", got)
	}
}

func TestGuardInterval(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 200 * mib, Hard: 232 * mib, Every: time.Second}
	g.setDefaults()
	for _, c := range []struct {
		rss  uint64
		want time.Duration
	}{
		{0, time.Second},
		{150 * mib, time.Second}, // 75 %: not above
		{151 * mib, DefaultGuardNear},
		{300 * mib, DefaultGuardNear},
	} {
		if got := g.interval(c.rss); got != c.want {
			t.Errorf("interval(%d MiB) = %s, want %s", c.rss/mib, got, c.want)
		}
	}
	// A steady 70 MiB/s growth is seen between the budget and the hard
	// limit: it moves 7 MiB between two samples once near the budget.
	if step := uint64(70*mib) * uint64(g.Near) / uint64(time.Second); step >= g.Hard-g.Budget {
		t.Errorf("70 MiB/s moves %d MiB per sample, past a %d MiB margin", step/mib, (g.Hard-g.Budget)/mib)
	}
	if off := (Guard{Every: time.Second, Near: time.Millisecond}); off.interval(1<<40) != time.Second {
		t.Error("an off guard samples fast")
	}
}

// TestGuardIntervalGrowing: a worker that would pass NearPercent of its
// budget by the next far sample, at the pace it grew, is sampled every
// Near already.
func TestGuardIntervalGrowing(t *testing.T) {
	const mib = 1 << 20
	g := Guard{Budget: 211 * mib, Hard: 233 * mib, Every: time.Second}
	g.setDefaults()
	for _, c := range []struct {
		mem, grew uint64
		elapsed   time.Duration
		want      time.Duration
	}{
		{100 * mib, 0, time.Second, time.Second},
		{100 * mib, 8 * mib, time.Second, time.Second},                 // 108 MiB by the next sample
		{100 * mib, 80 * mib, time.Second, DefaultGuardNear},           // 180 MiB, past 75 % of 211
		{100 * mib, 8 * mib, 100 * time.Millisecond, DefaultGuardNear}, // the same pace
		{100 * mib, 80 * mib, 0, time.Second},                          // no pace known
	} {
		if got := g.intervalGrowing(c.mem, c.grew, c.elapsed); got != c.want {
			t.Errorf("intervalGrowing(%d MiB, +%d MiB in %s) = %s, want %s", c.mem/mib, c.grew/mib, c.elapsed, got, c.want)
		}
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
	if got := g.loopReason(233*mib, MeasurePSS, 1234*time.Millisecond); got != "memory loop: pss 233.0MiB over budget 227.0MiB 1.23s after ready" {
		t.Errorf("loopReason = %q", got)
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
			if !strings.HasPrefix(ws.LastReason, "memory") || ends[reasonMaxMemory] != 1 ||
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
	mem, _, ok := groupMemory(rig.sup.Snapshot()[0].PID)
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
		if ends[reasonMemoryLoop] >= loops && rig.sup.Snapshot()[0].Restarts >= loops {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d memory loops within 60s (ends %v): %+v", ends[reasonMemoryLoop], ends, rig.sup.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ends, _ := rig.sup.Counts()
	if ends[reasonMaxMemory] != 1 {
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
