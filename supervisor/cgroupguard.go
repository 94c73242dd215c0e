package supervisor

import (
	"fmt"
	"math"
	"time"
)

// CgroupMemory is the memory cgroup whose limit holds percore and its
// workers, as the Guard reads and watches it (memwatch.Watch is one).
type CgroupMemory interface {
	// Usage returns the memory the cgroup is charged for (page cache
	// included), the part of it the kernel cannot reclaim without killing
	// (anonymous and locked memory), and its limit (0: none), in bytes.
	Usage() (charged, held, limit uint64, err error)
	// SetLevels asks for an alarm when the charged memory crosses any of
	// levels, either way, in place of the levels asked before; base is
	// the charged memory they were computed from. It must not block.
	SetLevels(base uint64, levels []uint64)
	// Alarms receives after the charged memory crossed a level or the
	// cgroup came under memory pressure.
	Alarms() <-chan struct{}
}

// alarms is the memory cgroup's alarm channel; nil without one.
func (s *Supervisor) alarms() <-chan struct{} {
	if s.cfg.Cgroup == nil {
		return nil
	}
	return s.cfg.Cgroup.Alarms()
}

// Bounds of the critical margin: the held memory that far below the
// cgroup's limit gets the biggest worker killed at once. It is 1/32 of
// the limit between them.
const (
	criticalMinMB = 16
	criticalMaxMB = 64
)

// cgroupMargins are how far below its limit the cgroup's held memory makes
// the guard act on its biggest worker.
type cgroupMargins struct {
	critical uint64 // SIGKILL to the biggest worker
	near     uint64 // the biggest serving worker is recycled, stopped first
}

// marginsFor returns the margins of a cgroup limited to limit bytes whose
// held memory grows by rate bytes per second: critical is 1/32 of the
// limit between criticalMinMB and criticalMaxMB, enough for the few
// milliseconds an alarm takes to become a SIGKILL; near adds what the
// cgroup grows while a recycle that stops the worker first drains it, so
// that it is gone before the critical margin is reached. A cgroup that
// does not grow recycles nothing.
func marginsFor(limit uint64, rate float64, g Guard) cgroupMargins {
	crit := min(max(criticalMinMB<<20, limit/32), criticalMaxMB<<20)
	grow := max(rate, 0) * (g.Drain + g.Near).Seconds()
	if grow >= float64(limit) || math.IsNaN(grow) {
		grow = float64(limit)
	}
	return cgroupMargins{critical: crit, near: crit + uint64(grow)}
}

// guardCgroup reads the memory cgroup after a round of samples: when what
// it holds nears its limit it recycles the biggest serving worker, stopping
// it first, and when it is within the critical margin it kills the biggest
// worker. Then it asks the cgroup for alarms at the next levels that
// matter.
func (s *Supervisor) guardCgroup(gs *guardState, g Guard, now time.Time) {
	cg := s.cfg.Cgroup
	if cg == nil || !g.On() {
		return
	}
	charged, held, limit, err := cg.Usage()
	if err != nil {
		if msg := err.Error(); msg != gs.cgroupErr {
			gs.cgroupErr = msg
			s.log.Warn("memory guard: cannot read the memory cgroup; each worker is still sampled", "error", err)
		}
		return
	}
	gs.cgroupErr = ""
	if limit == 0 {
		return
	}
	gs.cgroup.add(held, now)
	m := marginsFor(limit, gs.cgroup.rate, g)
	h, l := figures(held, limit)
	switch {
	case held+m.critical >= limit:
		s.strikeBiggest(gs, true, "memory: the cgroup holds "+h+" of its "+l+" limit", now)
	case held+m.near >= limit:
		s.strikeBiggest(gs, false, "memory: the cgroup holds "+h+" of its "+l+" limit, growing "+perSecond(gs.cgroup.rate), now)
	}
	gs.askLevels(cg, charged, limit, m, g)
}

// strikeBiggest kills the biggest worker, or recycles the biggest serving
// worker by stopping it first, at once: not through the replacer's queue,
// since a worker stopped first frees memory before its replacement takes
// any. A worker struck before is not chosen again for the same, and while
// a worker struck the same way is on its way out, no other is struck: its
// memory is about to be freed.
func (s *Supervisor) strikeBiggest(gs *guardState, kill bool, why string, now time.Time) {
	if gs.striking(kill, now) {
		return
	}
	var pick *watched
	var at *slot
	for sl, wt := range gs.workers {
		st, struck := gs.struck[wt.status.Key]
		if (kill && st.killed) || (!kill && struck) || (!kill && wt.status.State != StateReady) {
			continue
		}
		if pick == nil || wt.mem > pick.mem {
			pick, at = wt, sl
		}
	}
	if pick == nil {
		return
	}
	ws := pick.status
	gs.struck[ws.Key] = strike{killed: kill, at: now}
	if kill {
		reason := fmt.Sprintf("%s; its biggest worker (%s %.1fMiB) killed", why, measureName(pick.measure), float64(pick.mem)/(1<<20))
		at.mail.post(event{kind: evKill, key: ws.Key, detail: reason})
		return
	}
	detail := fmt.Sprintf("%s; its biggest worker (%s %.1fMiB) recycled, stopped first", why, measureName(pick.measure),
		float64(pick.mem)/(1<<20))
	if !pick.asked {
		s.log.Info("recycling worker", "worker", ws.ID, "pid", ws.PID, "reason", detail)
	}
	pick.asked = true
	at.mail.post(event{kind: evReplace, req: &replaceRequest{key: ws.Key, reason: EndMaxMemory, detail: detail, stopFirst: true}})
}

// strikeWait bounds how long a struck worker that is still there holds
// off the next strike.
const strikeWait = 5 * time.Second

// striking reports whether a worker the cgroup check killed (kill), or
// recycled, not long ago is still a slot's current worker.
func (gs *guardState) striking(kill bool, now time.Time) bool {
	for _, wt := range gs.workers {
		if st, ok := gs.struck[wt.status.Key]; ok && st.killed == kill && now.Sub(st.at) < strikeWait {
			return true
		}
	}
	return false
}

// levelSlack is how much earlier than needed a level may stay registered:
// registering costs the kernel tens of milliseconds.
const levelSlack = 8 << 20

// askLevels asks the cgroup for alarms when its charged memory reaches the
// point where some worker may have grown to the memory at which it is
// recycled (or, once asked, to the hard limit), and the near and critical
// margins: the held memory reaches those no sooner than the charged
// memory, page cache included. A level is kept while it still comes no
// later than needed.
func (gs *guardState) askLevels(cg CgroupMemory, charged, limit uint64, m cgroupMargins, g Guard) {
	want := []uint64{0, sub(limit, m.near), sub(limit, m.critical)}
	if up, ok := gs.headroom(g); ok {
		want[0] = charged + up
	}
	next := append([]uint64(nil), want...)
	if len(gs.levels) == len(want) {
		if old := gs.levels[0]; old > charged && old <= want[0] {
			next[0] = old
		}
		for i := 1; i < len(want); i++ {
			if old := gs.levels[i]; old <= want[i] && old+levelSlack >= want[i] {
				next[i] = old
			}
		}
	}
	if equalLevels(next, gs.levels) {
		return
	}
	gs.levels = next
	var ask []uint64
	for _, lv := range next {
		if lv > 0 && lv < limit {
			ask = append(ask, lv)
		}
	}
	cg.SetLevels(charged, ask)
}

// headroom is how much a worker may grow before the guard must look at it
// again: the least, over the workers, of the distance from the last
// sample to the memory at which it is recycled (to the hard limit once it was
// asked to go, or while it starts).
func (gs *guardState) headroom(g Guard) (uint64, bool) {
	var least uint64
	found := false
	for _, wt := range gs.workers {
		target := g.Hard
		if wt.status.State == StateReady && !wt.asked {
			target = min(wt.at, g.Budget)
		}
		if target == math.MaxUint64 || target <= wt.mem {
			continue
		}
		if d := target - wt.mem; !found || d < least {
			least, found = d, true
		}
	}
	return least, found
}

func sub(a, b uint64) uint64 {
	if b >= a {
		return 0
	}
	return a - b
}

func equalLevels(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
