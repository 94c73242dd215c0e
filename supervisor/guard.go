package supervisor

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Guard holds every worker's process group to a memory budget, its memory
// counted as treeMemory does: the sum of its processes' PSS, or of their
// RSS where PSS cannot be read.
// A worker is recycled — drained, then replaced (the replacement first
// when Config.SpareSlot says it fits, else after the old one stopped) —
// early enough that the old worker is gone by the time it would reach
// Budget: at Budget less what it grows, at the rate measured from its
// samples, while a recycle asked for now runs its course (the wait for
// replacements under way, the replacement's start-up as measured on the
// last workers started, Drain and a sampling interval). When the recycle
// of a worker is late (it waits behind others, or its replacement starts
// slower than measured) and the worker would reach Hard before it could
// drain, it is drained and stopped at once, before its replacement is
// ready. A worker above Hard is killed at once with SIGKILL to its group,
// before the memory cgroup's limit is reached and the kernel has to choose
// a victim or thrash. A worker recycled soon after it became ready, as was
// the one before it, is in a memory loop (see Loop). The zero Guard is off.
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
	// budget, or that would pass NearPercent of it or the memory at which
	// it is recycled before its next sample at Every (default 100ms).
	Near time.Duration
	// Drain is how long a recycled worker is expected to take to finish
	// its requests and exit, as part of the lead of a recycle (default
	// 300ms).
	Drain time.Duration
	// Loop is how soon after becoming ready a worker may be recycled for
	// its memory before that is taken for a memory loop, when the slot's
	// previous worker was recycled as soon (default 30s): each replacement
	// would be again, so the recycling waits the slot's backoff, as a
	// crash's restart does, unless the worker keeps growing, and is logged
	// at WARN and counted as "memory loop".
	Loop time.Duration
}

// NearPercent is the share of the budget above which a worker is sampled
// every Guard.Near instead of every Guard.Every.
const NearPercent = 75

// EarliestPercent is the share of the budget below which no worker is
// recycled, however fast it grows: a burst of allocations misread as
// steady growth recycles no small worker.
const EarliestPercent = 50

// Defaults of Guard's fields.
const (
	DefaultGuardNear  = 100 * time.Millisecond
	DefaultGuardDrain = 300 * time.Millisecond
	DefaultGuardLoop  = 30 * time.Second
)

// On reports whether the guard acts.
func (g Guard) On() bool { return g.Budget > 0 }

func (g *Guard) setDefaults() {
	setDuration(&g.Near, DefaultGuardNear)
	setDuration(&g.Drain, DefaultGuardDrain)
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
	guardRecycle                    // past the memory at which it is recycled: drain and replace
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

// decide says what to do about a worker whose group uses mem bytes and is
// recycled above at bytes (recycleAt's answer).
func (g Guard) decide(mem, at uint64) guardAction {
	switch {
	case !g.On():
		return guardNone
	case mem > g.Hard:
		return guardKill
	case mem > min(at, g.Budget):
		return guardRecycle
	default:
		return guardNone
	}
}

// recycleAt is the memory above which a worker that grows by rate bytes
// per second is recycled, when a recycle asked for now takes lead until
// the old worker is gone: Budget - rate × lead, so that it is gone when it
// would reach the budget, but no lower than EarliestPercent of the budget.
// A worker that does not grow is recycled above the budget.
func (g Guard) recycleAt(rate float64, lead time.Duration) uint64 {
	if rate <= 0 || lead <= 0 {
		return g.Budget
	}
	floor := g.Budget / 100 * EarliestPercent
	early := rate * lead.Seconds()
	if early >= float64(g.Budget-floor) || math.IsNaN(early) {
		return floor
	}
	return g.Budget - uint64(early)
}

// drainNow reports whether a worker whose recycle is under way, with mem
// bytes growing by rate bytes per second, must stop at once, before its
// replacement is ready: waiting a sampling interval more, it could not
// drain before it reaches the hard limit.
func (g Guard) drainNow(mem uint64, rate float64) bool {
	if !g.On() || g.Hard == math.MaxUint64 {
		return false
	}
	return float64(mem)+max(rate, 0)*(g.Drain+g.Near).Seconds() >= float64(g.Hard)
}

// interval is how long to wait before sampling a worker whose group last
// used mem bytes, grows by rate bytes per second and is recycled above at
// bytes: Near above NearPercent of the budget, or when, at that pace, it
// could pass NearPercent of the budget or at before a sample Every from
// now; else Every. Only the workers close to their budget, or growing fast
// towards it, are sampled fast: a worker growing by 80 MiB/s moves 80 MiB
// in an Every of 1s, more than the quarter of its budget between
// NearPercent and the budget, and a sample could otherwise find it past
// its hard limit, never seen above its budget.
func (g Guard) interval(mem, at uint64, rate float64) time.Duration {
	if !g.On() {
		return g.Every
	}
	near := g.Budget / 100 * NearPercent
	then := float64(mem) + rate*g.Every.Seconds()
	if mem > near || then > float64(near) || then >= float64(min(at, g.Budget)) {
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

// overBudget is the reason a worker is recycled, for the log and /status:
// "memory: pss 233.4MiB over budget 227.0MiB", naming the measure.
func (g Guard) overBudget(mem uint64, m MemoryMeasure) string {
	v, limit := figures(mem, g.Budget)
	return "memory: " + measureName(m) + " " + v + " over budget " + limit
}

// early is the reason a growing worker is recycled before its budget:
// "memory: pss 180.2MiB growing 80.0MiB/s, recycled early to be gone
// before budget 313.0MiB (lead 1.6s)".
func (g Guard) early(mem uint64, m MemoryMeasure, rate float64, lead time.Duration) string {
	v, limit := figures(mem, g.Budget)
	return fmt.Sprintf("memory: %s %s growing %s, recycled early to be gone before budget %s (lead %s)",
		measureName(m), v, perSecond(rate), limit, lead.Round(10*time.Millisecond))
}

// recycleReason is why a worker with mem bytes, past the memory at which
// it is recycled, is recycled.
func (g Guard) recycleReason(mem uint64, m MemoryMeasure, rate float64, lead time.Duration) string {
	if mem > g.Budget {
		return g.overBudget(mem, m)
	}
	return g.early(mem, m, rate, lead)
}

// loopReason is the reason a worker in a memory loop is recycled: the
// guard's reason without its "memory: ", and how long after it became
// ready it was first recycled: "memory loop: pss 233.4MiB over budget
// 227.0MiB 1.23s after ready".
func loopReason(reason string, served time.Duration) string {
	return "memory loop: " + strings.TrimPrefix(reason, "memory: ") + " " + served.Round(10*time.Millisecond).String() + " after ready"
}

// beforeHard is the reason a worker whose recycle is under way is
// stopped before its replacement is ready.
func (g Guard) beforeHard(mem uint64, m MemoryMeasure, rate float64) string {
	v, limit := figures(mem, g.Hard)
	return fmt.Sprintf("memory: %s %s growing %s would reach the hard limit %s before its replacement is ready",
		measureName(m), v, perSecond(rate), limit)
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

// perSecond writes a growth rate in bytes per second as "80.0MiB/s".
func perSecond(rate float64) string {
	return fmt.Sprintf("%.1fMiB/s", max(rate, 0)/(1<<20))
}
