package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/sizing"
	"github.com/percore/percore/supervisor"
)

// whyReload is the Change.Why of a plan made because the user asked for a
// reload (SIGHUP, percore reload): the reload replaces the workers itself.
const whyReload = "reload"

// replanner puts new plans in force in the supervisor: the guard's limits,
// the worker count, and new workers for new heap flags, started one at a
// time by the rolling replacement. sup is set once the supervisor exists;
// no change comes before, since nothing asks for one before the actors run.
type replanner struct {
	sup atomic.Pointer[supervisor.Supervisor]
	log hclog.Logger
}

// apply implements sizing.LiveConfig.Apply.
func (r *replanner) apply(ch sizing.Change) {
	sup := r.sup.Load()
	if sup == nil {
		return
	}
	sup.SetMemory(guardOf(ch.To), ch.To.SpareSlot)
	if ch.To.Workers != ch.From.Workers {
		if _, err := sup.Scale(ch.To.Workers); err != nil {
			r.log.Warn("plan: cannot scale", "workers", ch.To.Workers, "error", err)
		}
	}
	if sizing.NeedsNewWorkers(ch.From, ch.To) && ch.Why != whyReload {
		r.log.Info("plan: replacing the workers one at a time with the new heap flags")
		sup.Reload()
	}
}

// guardOf is the supervisor's memory guard for a plan.
func guardOf(s sizing.Sized) supervisor.Guard {
	return supervisor.Guard{Budget: s.GuardBudget, Hard: s.GuardHard}
}

// steering is what signals and the control socket act on: a scale goes
// through the plan, so that new workers get heaps that fit, and a reload
// reads the limits again before it replaces the workers.
type steering struct {
	live *sizing.Live
	sup  *supervisor.Supervisor
	log  hclog.Logger
}

// Reload implements lifecycle and control.Target.
func (s steering) Reload() {
	if err := s.live.Refresh(whyReload); err != nil {
		s.log.Warn("reload: the limits could not be read again; the plan stays", "error", err)
	}
	s.sup.Reload()
}

// Scale implements control.Target.
func (s steering) Scale(n int) (int, error) {
	if n < 1 || n > supervisor.MaxWorkers {
		return 0, fmt.Errorf("scale to %d: want 1 to %d workers", n, supervisor.MaxWorkers)
	}
	if _, err := s.live.Scale(n); err != nil {
		return 0, err
	}
	return n, nil
}

// ScaleBy implements lifecycle and control.Target.
func (s steering) ScaleBy(delta int) (int, error) {
	return s.Scale(max(s.live.Plan().Workers+delta, 1))
}

// followLimits reports whether the plan follows the limits: --follow-limits,
// by default on where a cgroup limits percore's CPUs or memory.
func (cfg *config) followLimits(res machine.Resources) bool {
	if cfg.FollowLimitsSet {
		return cfg.FollowLimits
	}
	return res.Cgroup != "" && (hasCgroupSource(res.MemorySource) || hasCgroupSource(res.CPUSource))
}

func hasCgroupSource(src string) bool { return len(src) >= 6 && src[:6] == "cgroup" }

// liveActor runs the plan's limit watch in the run.Group.
type liveActor struct {
	live   *sizing.Live
	ctx    context.Context
	cancel context.CancelFunc
}

func newLiveActor(live *sizing.Live) *liveActor {
	ctx, cancel := context.WithCancel(context.Background())
	return &liveActor{live: live, ctx: ctx, cancel: cancel}
}

func (a *liveActor) run() error      { return a.live.Run(a.ctx) }
func (a *liveActor) interrupt(error) { a.cancel() }
