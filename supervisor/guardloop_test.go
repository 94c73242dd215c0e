package supervisor

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const mib = 1 << 20

func TestGrowthRate(t *testing.T) {
	var gr growth
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	gr.add(100*mib, at(0))
	if gr.rate != 0 {
		t.Fatalf("rate after one sample = %v", gr.rate)
	}
	// 8 MiB per 100 ms: 80 MiB/s.
	for i := 1; i <= 5; i++ {
		gr.add(uint64(100+8*i)*mib, at(100*i))
	}
	if r := gr.rate / mib; r < 79 || r > 81 {
		t.Errorf("steady 80 MiB/s read as %.1f MiB/s", r)
	}
	// A sample 20 ms later is too close to measure a slope from: a runtime
	// allocates in steps.
	gr.add(148*mib, at(520))
	if r := gr.rate / mib; r < 79 || r > 81 {
		t.Errorf("a close sample moved the rate to %.1f MiB/s", r)
	}
	// The growth stops: the rate halves with each sample, as the average.
	prev := gr.rate
	for i := 1; i <= 3; i++ {
		gr.add(148*mib, at(520+100*i))
		if gr.rate >= prev {
			t.Errorf("flat sample %d: rate %.1f MiB/s, not below %.1f", i, gr.rate/mib, prev/mib)
		}
		prev = gr.rate
	}
	// A burst reads at once, whatever the average.
	gr.add(248*mib, at(920))
	if r := gr.rate / mib; r < 999 {
		t.Errorf("100 MiB in 100 ms read as %.1f MiB/s", r)
	}
	// Shrinking is no growth.
	var down growth
	down.add(200*mib, at(0))
	down.add(100*mib, at(100))
	if down.rate != 0 {
		t.Errorf("shrinking read as %.1f MiB/s", down.rate/mib)
	}
}

// TestWatchedInterval: a worker whose growth is not known yet is sampled
// every Near, however small.
func TestWatchedInterval(t *testing.T) {
	g := Guard{Budget: 200 * mib, Hard: 232 * mib, Every: time.Second}
	g.setDefaults()
	wt := &watched{at: 200 * mib}
	t0 := time.Unix(1000, 0)
	wt.add(50*mib, t0)
	if got := wt.interval(g); got != g.Near {
		t.Errorf("interval with one sample = %s, want %s", got, g.Near)
	}
	wt.add(50*mib, t0.Add(100*time.Millisecond))
	if got := wt.interval(g); got != g.Every {
		t.Errorf("interval of a small worker that does not grow = %s, want %s", got, g.Every)
	}
}

func TestStartups(t *testing.T) {
	var st startups
	if got := st.longest(); got != defaultStartup {
		t.Errorf("longest before any = %s, want %s", got, defaultStartup)
	}
	for _, ms := range []int{2000, 400, 1300, 350, 500} {
		st.add(time.Duration(ms) * time.Millisecond)
	}
	// The first, 2 s, is forgotten: the last four count.
	if got := st.longest(); got != 1300*time.Millisecond {
		t.Errorf("longest = %s, want 1.3s", got)
	}
}

func TestLeadTime(t *testing.T) {
	g := Guard{Budget: 313 * mib, Hard: 327 * mib, Every: time.Second}
	g.setDefaults()
	now := time.Unix(2000, 0)
	for _, c := range []struct {
		name     string
		spare    bool
		busyFor  time.Duration // the replacement under way started that long ago; 0: none
		queued   int
		startup  time.Duration
		wantLead time.Duration
	}{
		{"spare slot, idle replacer", true, 0, 0, 1300 * time.Millisecond, 1700 * time.Millisecond},
		{"no spare slot: the worker stops first", false, 0, 0, 1300 * time.Millisecond, 400 * time.Millisecond},
		{"behind a replacement 0.6s under way", true, 600 * time.Millisecond, 0, 1300 * time.Millisecond, 2700 * time.Millisecond},
		{"behind one under way and two queued", true, 600 * time.Millisecond, 2, 1300 * time.Millisecond, 5900 * time.Millisecond},
		{"behind one under way longer than expected", true, 5 * time.Second, 0, 1300 * time.Millisecond, 1700 * time.Millisecond},
	} {
		s := &Supervisor{recycles: make(chan recycle, 8)}
		s.memory.Store(&memorySettings{guard: g, spareSlot: c.spare})
		if c.busyFor > 0 {
			s.replacing.Store(now.Add(-c.busyFor).UnixNano())
		}
		for range c.queued {
			s.recycles <- recycle{}
		}
		if got := s.leadTime(g, c.startup, now); got != c.wantLead {
			t.Errorf("%s: lead %s, want %s", c.name, got, c.wantLead)
		}
	}
}

func TestMarginsFor(t *testing.T) {
	g := Guard{Budget: 200 * mib, Every: time.Second}
	g.setDefaults() // Drain 300ms, Near 100ms
	for _, c := range []struct {
		limit          uint64
		rate           float64 // MiB/s
		critical, near uint64  // MiB
	}{
		{256 * mib, 0, 16, 16},
		{256 * mib, 300, 16, 136},
		{1024 * mib, 80, 32, 64},
		{8192 * mib, 0, 64, 64},
		{128 * mib, 1e9, 16, 16 + 128},
	} {
		m := marginsFor(c.limit, c.rate*mib, g)
		if m.critical/mib != c.critical || m.near/mib != c.near {
			t.Errorf("marginsFor(%d MiB, %v MiB/s) = critical %d MiB, near %d MiB; want %d, %d",
				c.limit/mib, c.rate, m.critical/mib, m.near/mib, c.critical, c.near)
		}
	}
}

// fakeCgroup is a CgroupMemory whose usage the test sets.
type fakeCgroup struct {
	alarms chan struct{}

	mu                   sync.Mutex // protects the fields below
	charged, held, limit uint64
	asked                [][]uint64
	bases                []uint64
}

func newFakeCgroup(limit, held uint64) *fakeCgroup {
	return &fakeCgroup{alarms: make(chan struct{}, 1), limit: limit, held: held, charged: held}
}

func (f *fakeCgroup) Usage() (charged, held, limit uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.charged, f.held, f.limit, nil
}

func (f *fakeCgroup) SetLevels(base uint64, levels []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, append([]uint64(nil), levels...))
	f.bases = append(f.bases, base)
}

func (f *fakeCgroup) Alarms() <-chan struct{} { return f.alarms }

func (f *fakeCgroup) set(held uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held, f.charged = held, held
}

func (f *fakeCgroup) lastLevels() ([]uint64, uint64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.asked) == 0 {
		return nil, 0, 0
	}
	return f.asked[len(f.asked)-1], f.bases[len(f.bases)-1], len(f.asked)
}

// TestAskLevels checks the levels asked of the cgroup: where a worker may
// have grown to the RSS at which it is recycled, and the near and critical
// margins; a level still early enough is kept.
func TestAskLevels(t *testing.T) {
	g := Guard{Budget: 200 * mib, Hard: 230 * mib, Every: time.Second}
	g.setDefaults()
	cg := newFakeCgroup(256*mib, 0)
	gs := newGuardState()
	a, b := newSlot(0), newSlot(1)
	gs.workers[a] = &watched{growth: growth{rss: 120 * mib}, status: WorkerStatus{Key: 1, State: StateReady}, at: 150 * mib}
	gs.workers[b] = &watched{growth: growth{rss: 90 * mib}, status: WorkerStatus{Key: 2, State: StateStarting}, at: 200 * mib}
	m := marginsFor(256*mib, 0, g)
	gs.askLevels(cg, 200*mib, 256*mib, m, g)
	levels, base, n := cg.lastLevels()
	// Worker a may grow 30 MiB before it is recycled; b, starting, 140
	// MiB before its hard limit.
	want := []uint64{230 * mib, 240 * mib, 240 * mib}
	if n != 1 || base != 200*mib || !equalLevels(levels, want) {
		t.Fatalf("asked %v from %d MiB (%d times), want %v", mibs(levels), base/mib, n, mibs(want))
	}
	// a grew 10 MiB: the level above is still where it should be.
	gs.workers[a].rss = 130 * mib
	gs.askLevels(cg, 210*mib, 256*mib, m, g)
	if _, _, n := cg.lastLevels(); n != 1 {
		t.Errorf("asked again for the same levels")
	}
	// a is asked to go: the next level is its hard limit.
	gs.workers[a].asked = true
	gs.askLevels(cg, 210*mib, 256*mib, m, g)
	if _, _, n := cg.lastLevels(); n != 1 {
		t.Errorf("asked for a later level while the one above still comes first")
	}
	// The usage passed the level: the next, a's hard limit 79 MiB away,
	// lies beyond the cgroup's limit and is not asked for.
	gs.workers[a].rss = 151 * mib
	gs.askLevels(cg, 235*mib, 256*mib, m, g)
	levels, base, n = cg.lastLevels()
	if want := []uint64{240 * mib, 240 * mib}; n != 2 || base != 235*mib || !equalLevels(levels, want) {
		t.Errorf("after the usage passed the level: asked %v from %d MiB (%d times), want %v",
			mibs(levels), base/mib, n, mibs(want))
	}
	// It fell back: the level is a's hard limit again.
	gs.askLevels(cg, 140*mib, 256*mib, m, g)
	if levels, _, _ := cg.lastLevels(); !equalLevels(levels, []uint64{219 * mib, 240 * mib, 240 * mib}) {
		t.Errorf("after the usage fell: asked %v, want [219 240 240]", mibs(levels))
	}
}

func mibs(v []uint64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x / mib
	}
	return out
}

// TestGrowingWorkerRecycledEarly runs a worker that grows by 80 MiB/s
// towards a 160 MiB budget, with a spare slot: the guard recycles it before
// the budget, at an RSS that leaves room for its replacement's start-up
// and its drain at the rate it grows, and it stops by itself.
func TestGrowingWorkerRecycledEarly(t *testing.T) {
	rig := newRig(t, "grow", 1, func(c *Config) {
		c.Guard = Guard{Budget: 160 << 20, Hard: 1 << 40}
		c.SpareSlot = true
		c.SampleInterval = 100 * time.Millisecond
	}, "FAKE_GROW_MB=4", "FAKE_GROW_MAX_MB=600")
	rig.waitAdded(t)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ws := rig.sup.Snapshot()[0]
		if ws.Replaced == 0 || ws.LastExit == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !strings.HasPrefix(ws.LastReason, "memory: rss ") || !strings.Contains(ws.LastReason, "recycled early") {
			t.Errorf("the worker was replaced for %q, want an early recycle", ws.LastReason)
		}
		if ws.LastExit == nil || ws.LastExit.Signal == syscall.SIGKILL {
			t.Errorf("the recycled worker ended %v, want its own exit", ws.LastExit)
		}
		return
	}
	t.Fatalf("not recycled: %+v", rig.sup.Snapshot()[0])
}

// TestCgroupAtCriticalKillsBiggest runs two workers of 8 and 64 MiB in a
// cgroup that holds 8 MiB less than its limit, and samples only on alarms:
// one alarm gets the bigger worker killed at once, the other kept.
func TestCgroupAtCriticalKillsBiggest(t *testing.T) {
	cg := newFakeCgroup(256*mib, 100*mib)
	rig := newRig(t, "hog", 2, func(c *Config) {
		c.MaxBootFailures = 100
		c.Guard = Guard{Budget: 1 << 30, Hard: 1 << 40, Near: time.Hour}
		c.SampleInterval = time.Hour
		c.Cgroup = cg
	}, "FAKE_HOG_MB=8", "FAKE_HOG_MB_1=64")
	rig.waitAdded(t)
	rig.waitAdded(t)
	before := rig.sup.Snapshot()
	cg.set(248 * mib)
	cg.alarms <- struct{}{}
	ws := awaitWorkerEnd(t, rig, 1)
	if !strings.Contains(ws.LastReason, "the cgroup holds 248MiB of its 256MiB limit; its biggest worker") ||
		!strings.Contains(ws.LastReason, "killed") || ws.LastExit.Signal != syscall.SIGKILL {
		t.Errorf("worker 1 ended %v for %q, want a SIGKILL by the cgroup check", ws.LastExit, ws.LastReason)
	}
	cg.set(100 * mib)
	if now := rig.sup.Snapshot()[0]; now.PID != before[0].PID || now.LastExit != nil {
		t.Errorf("the smaller worker was struck too: %+v", now)
	}
}

// TestCgroupNearLimitRecyclesBiggest has the cgroup's held memory grow by
// up to 200 MiB/s towards its limit until the guard acts: it recycles the
// biggest serving worker, stopping it first, before the critical margin;
// the other keeps serving.
func TestCgroupNearLimitRecyclesBiggest(t *testing.T) {
	cg := newFakeCgroup(256*mib, 50*mib)
	rig := newRig(t, "hog", 2, func(c *Config) {
		c.MaxBootFailures = 100
		c.Guard = Guard{Budget: 1 << 30, Hard: 1 << 40}
		c.SampleInterval = 100 * time.Millisecond
		c.Cgroup = cg
	}, "FAKE_HOG_MB=8", "FAKE_HOG_MB_0=64")
	rig.waitAdded(t)
	rig.waitAdded(t)
	before := rig.sup.Snapshot()
	stop := make(chan struct{})
	grown := make(chan struct{})
	go func() {
		defer close(grown)
		// It grows until the guard acts, short of the critical margin.
		held := uint64(50 * mib)
		for held < 236*mib && rig.sup.Snapshot()[0].NotRouted == "" {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			held += 4 * mib
			cg.set(held)
		}
	}()
	ws := awaitWorkerEnd(t, rig, 0)
	close(stop)
	<-grown
	cg.set(50 * mib)
	if !strings.Contains(ws.LastReason, "its biggest worker") || !strings.Contains(ws.LastReason, "stopped first") ||
		ws.LastExit.Signal == syscall.SIGKILL {
		t.Errorf("worker 0 ended %v for %q, want a recycle by the cgroup check", ws.LastExit, ws.LastReason)
	}
	if now := rig.sup.Snapshot()[1]; now.PID != before[1].PID || now.LastExit != nil {
		t.Errorf("the smaller worker was struck too: %+v", now)
	}
}

// awaitWorkerEnd waits until worker id's first process has ended, and returns
// the slot's status then.
func awaitWorkerEnd(t *testing.T, rig *testRig, id int) WorkerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ws := rig.sup.Snapshot()[id]; ws.LastExit != nil {
			return ws
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("worker %d still runs: %+v", id, rig.sup.Snapshot())
	return WorkerStatus{}
}
