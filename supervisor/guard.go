package supervisor

import (
	"fmt"
	"time"
)

// Guard holds every worker's process group to a memory budget, its memory
// counted as groupMemory does: the sum of its processes' PSS, or of their RSS
// where PSS cannot be read. A
// worker above Budget is recycled: drained, then replaced (the replacement
// first when Config.SpareSlot says it fits, else after the old one stopped).
// A worker above Hard is killed at once with SIGKILL to its group, before
// the memory cgroup's limit is reached and the kernel has to choose a victim
// or thrash. The zero Guard is off.
type Guard struct {
	// Budget is the memory in bytes a worker's group may use; 0 turns the
	// guard off.
	Budget uint64
	// Hard is the memory at which a worker's group is killed at once; it is
	// raised to Budget when below it.
	Hard uint64
	// Every is the sampling interval of a worker far from its budget
	// (default Config.SampleInterval).
	Every time.Duration
	// Near is the sampling interval of a worker above NearPercent of its
	// budget (default 100ms): a worker growing by 70 MiB/s moves 7 MiB
	// between two samples.
	Near time.Duration
	// Loop is how soon after becoming ready a worker may pass its budget
	// before that is taken for a memory loop, when the slot's previous
	// worker passed it as soon (default 30s): each replacement would pass
	// it again, so the recycling waits the slot's backoff, as a crash's
	// restart does, and is logged at WARN and counted as "memory loop".
	Loop time.Duration
}

// NearPercent is the share of the budget above which a worker is sampled
// every Guard.Near instead of every Guard.Every.
const NearPercent = 75

// DefaultGuardNear is Guard.Near's default.
const DefaultGuardNear = 100 * time.Millisecond

// DefaultGuardLoop is Guard.Loop's default.
const DefaultGuardLoop = 30 * time.Second

// On reports whether the guard acts.
func (g Guard) On() bool { return g.Budget > 0 }

func (g *Guard) setDefaults() {
	setDuration(&g.Near, DefaultGuardNear)
	setDuration(&g.Loop, DefaultGuardLoop)
	if g.Near > g.Every {
		g.Near = g.Every
	}
	if g.On() && g.Hard < g.Budget {
		g.Hard = g.Budget
	}
}

// guardAction is what the guard does about one sample.
type guardAction int

const (
	guardNone    guardAction = iota // within the budget
	guardRecycle                    // above the budget: drain and replace
	guardKill                       // above the hard limit: SIGKILL now
)

// String returns "none", "recycle" or "kill".
func (a guardAction) String() string {
	switch a {
	case guardRecycle:
		return "recycle"
	case guardKill:
		return "kill"
	default:
		return "none"
	}
}

// decide says what to do about a worker whose group uses mem bytes.
func (g Guard) decide(mem uint64) guardAction {
	switch {
	case !g.On():
		return guardNone
	case mem > g.Hard:
		return guardKill
	case mem > g.Budget:
		return guardRecycle
	default:
		return guardNone
	}
}

// interval is how long to wait before sampling a worker whose group last
// used mem bytes: Near above NearPercent of the budget, else Every. Only
// the workers close to their budget are sampled fast.
func (g Guard) interval(mem uint64) time.Duration {
	if g.On() && mem > g.Budget/100*NearPercent {
		return g.Near
	}
	return g.Every
}

// hurry is the memory above which a worker in a memory loop is recycled
// without waiting for its backoff: half-way from the budget to the hard
// limit, and no further than budget + max(32MiB, 10%) / 2 where nothing is
// killed. A worker that keeps growing is replaced before the hard limit
// kills it mid-request; one that only sits over its budget waits.
func (g Guard) hurry() uint64 {
	margin := min(max(32<<20, g.Budget/10), g.Hard-g.Budget)
	return g.Budget + margin/2
}

// intervalGrowing is interval for a worker whose group uses mem bytes and
// grew by grew bytes over the elapsed time since its last sample: one that
// would pass NearPercent of its budget by a sample Every later, at that
// pace, is sampled every Near already. A worker growing by 80 MiB/s moves
// 80 MiB in an Every of 1s, more than the quarter of its budget between
// NearPercent and the budget; without this, a sample could find it past
// its hard limit, never seen above its budget.
func (g Guard) intervalGrowing(mem, grew uint64, elapsed time.Duration) time.Duration {
	if elapsed > 0 && grew > 0 {
		mem += uint64(float64(grew) * float64(g.Every) / float64(elapsed))
	}
	return g.interval(mem)
}

// overBudget is the reason a worker is recycled, for the log and /status:
// "memory: pss 233.4MiB over budget 227.0MiB", naming the measure.
func (g Guard) overBudget(mem uint64, m MemoryMeasure) string {
	v, limit := figures(mem, g.Budget)
	return "memory: " + measureName(m) + " " + v + " over budget " + limit
}

// loopReason is the reason a worker in a memory loop is recycled, after
// it passed its budget served after it became ready: "memory loop: pss
// 233.4MiB over budget 227.0MiB 1.23s after ready".
func (g Guard) loopReason(mem uint64, m MemoryMeasure, served time.Duration) string {
	v, limit := figures(mem, g.Budget)
	return "memory loop: " + measureName(m) + " " + v + " over budget " + limit + " " + served.Round(10*time.Millisecond).String() +
		" after ready"
}

// overHard is the reason a worker is killed at once.
func (g Guard) overHard(mem uint64, m MemoryMeasure) string {
	v, limit := figures(mem, g.Hard)
	return "memory: " + measureName(m) + " " + v + " over hard limit " + limit + ", killed"
}

// measureName names the measure m in a reason: "pss" or "rss".
func measureName(m MemoryMeasure) string {
	if m == MeasurePSS {
		return "pss"
	}
	return "rss"
}

// figures writes a measured size and the limit it passed in MiB with one
// decimal, or in KiB or bytes where MiB would show them equal: a figure
// over its limit never reads as equal to it.
func figures(v, limit uint64) (string, string) {
	for _, u := range []struct {
		size float64
		name string
	}{{1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		a := fmt.Sprintf("%.1f%s", float64(v)/u.size, u.name)
		b := fmt.Sprintf("%.1f%s", float64(limit)/u.size, u.name)
		if a != b {
			return a, b
		}
	}
	return fmt.Sprintf("%dB", v), fmt.Sprintf("%dB", limit)
}
