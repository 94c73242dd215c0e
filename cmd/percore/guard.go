package main

import (
	"math"
	"strings"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/supervisor"
)

// hardMarginMinMB and hardMarginPercent size the Guard's hard limit above
// the budget where a cgroup limits the memory (elsewhere workers are only
// recycled): budget + max(32MiB, 10%), but no more than half the memory the
// plan keeps back, shared among the worker slots, so that workers killed at
// the hard limit still leave percore and the kernel room below the cgroup's
// limit.
const (
	hardMarginMinMB   = 32
	hardMarginPercent = 10
)

// memoryLimited reports whether a memory cgroup limits percore.
func (p plan) memoryLimited() bool {
	return strings.HasPrefix(p.res.MemorySource, "cgroup")
}

// guard is the memory guard the workers run under: --max-memory when given
// ("off" turns it off), else the worker's memory budget when a cgroup
// limits the memory or the runtime has no hard heap cap (RecycleByRSS).
func (p plan) guard(cfg *config) supervisor.Guard {
	var budget uint64
	switch {
	case cfg.MaxMemorySet:
		budget = uint64(cfg.MaxMemoryMB) * machine.MiB
	case p.memoryLimited() || p.rt.Memory == jsruntime.RecycleByRSS:
		budget = p.WorkerBudget
	}
	if budget == 0 {
		return supervisor.Guard{}
	}
	if !p.memoryLimited() {
		// No cgroup limit to keep below: recycle, never kill.
		return supervisor.Guard{Budget: budget, Hard: math.MaxUint64}
	}
	margin := max(hardMarginMinMB*machine.MiB, budget/100*hardMarginPercent)
	{
		slots := uint64(p.Workers)
		if p.SpareSlot {
			slots++
		}
		if used := p.WorkerBudget * slots; p.res.Memory > used {
			margin = min(margin, (p.res.Memory-used)/2/slots)
		}
	}
	return supervisor.Guard{Budget: budget, Hard: budget + margin}
}
