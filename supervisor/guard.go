package supervisor

import (
	"fmt"
	"math"
	"time"
)

// Guard holds every worker's process group to a resident memory budget.
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
// a victim or thrash. The zero Guard is off.
type Guard struct {
	// Budget is the RSS in bytes a worker's group may use; 0 turns the
	// guard off.
	Budget uint64
	// Hard is the RSS at which a worker's group is killed at once; it is
	// raised to Budget when below it.
	Hard uint64
	// Every is the sampling interval of a worker far from its budget
	// (default Config.SampleInterval).
	Every time.Duration
	// Near is the sampling interval of a worker above NearPercent of its
	// budget, or that would pass the RSS at which it is recycled before
	// its next sample at Every (default 100ms).
	Near time.Duration
	// Drain is how long a recycled worker is expected to take to finish
	// its requests and exit, as part of the lead of a recycle (default
	// 300ms).
	Drain time.Duration
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
)

// On reports whether the guard acts.
func (g Guard) On() bool { return g.Budget > 0 }

func (g *Guard) setDefaults() {
	setDuration(&g.Near, DefaultGuardNear)
	setDuration(&g.Drain, DefaultGuardDrain)
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
	guardRecycle                    // past the RSS at which it is recycled: drain and replace
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

// decide says what to do about a worker whose group uses rss bytes and is
// recycled above at bytes (recycleAt's answer).
func (g Guard) decide(rss, at uint64) guardAction {
	switch {
	case !g.On():
		return guardNone
	case rss > g.Hard:
		return guardKill
	case rss > min(at, g.Budget):
		return guardRecycle
	default:
		return guardNone
	}
}

// recycleAt is the RSS above which a worker that grows by rate bytes per
// second is recycled, when a recycle asked for now takes lead until the
// old worker is gone: Budget - rate × lead, so that it is gone when it
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

// drainNow reports whether a worker whose recycle is under way, with rss
// bytes growing by rate bytes per second, must stop at once, before its
// replacement is ready: waiting a sampling interval more, it could not
// drain before it reaches the hard limit.
func (g Guard) drainNow(rss uint64, rate float64) bool {
	if !g.On() || g.Hard == math.MaxUint64 {
		return false
	}
	return float64(rss)+max(rate, 0)*(g.Drain+g.Near).Seconds() >= float64(g.Hard)
}

// interval is how long to wait before sampling a worker whose group last
// used rss bytes, grows by rate bytes per second and is recycled above at
// bytes: Near above NearPercent of the budget, or when it could pass at
// before a sample Every from now; else Every. Only the workers close to
// their budget, or growing fast towards it, are sampled fast.
func (g Guard) interval(rss, at uint64, rate float64) time.Duration {
	if !g.On() {
		return g.Every
	}
	if rss > g.Budget/100*NearPercent || float64(rss)+rate*g.Every.Seconds() >= float64(min(at, g.Budget)) {
		return g.Near
	}
	return g.Every
}

// overBudget is the reason a worker is recycled, for the log and /status:
// "memory: rss 233MiB over budget 227MiB".
func (g Guard) overBudget(rss uint64) string {
	return fmt.Sprintf("memory: rss %dMiB over budget %dMiB", rss>>20, g.Budget>>20)
}

// early is the reason a growing worker is recycled before its budget:
// "memory: rss 180MiB growing 80MiB/s, recycled early to be gone before
// budget 313MiB (lead 1.6s)".
func (g Guard) early(rss uint64, rate float64, lead time.Duration) string {
	return fmt.Sprintf("memory: rss %dMiB growing %dMiB/s, recycled early to be gone before budget %dMiB (lead %s)",
		rss>>20, uint64(rate)>>20, g.Budget>>20, lead.Round(10*time.Millisecond))
}

// recycleReason is why a worker with rss bytes, past the RSS at which it is
// recycled, is recycled.
func (g Guard) recycleReason(rss uint64, rate float64, lead time.Duration) string {
	if rss > g.Budget {
		return g.overBudget(rss)
	}
	return g.early(rss, rate, lead)
}

// beforeHard is the reason a worker whose recycle is under way is
// stopped before its replacement is ready.
func (g Guard) beforeHard(rss uint64, rate float64) string {
	return fmt.Sprintf("memory: rss %dMiB growing %dMiB/s would reach the hard limit %dMiB before its replacement is ready",
		rss>>20, uint64(rate)>>20, g.Hard>>20)
}

// overHard is the reason a worker is killed at once.
func (g Guard) overHard(rss uint64) string {
	return fmt.Sprintf("memory: rss %dMiB over hard limit %dMiB, killed", rss>>20, g.Hard>>20)
}
