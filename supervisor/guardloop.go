package supervisor

import (
	"time"
)

// alarmGap is the shortest time between two rounds of samples that alarms
// of the memory cgroup start.
const alarmGap = 10 * time.Millisecond

// guardState is what the sampler remembers between rounds: each slot's
// current worker and its growth, its meter, when to sample it next, the
// start-up times seen, the memory cgroup's growth and the levels asked of
// it. Only the sampler's goroutine uses it.
type guardState struct {
	workers   map[*slot]*watched
	meters    map[*slot]*meter
	next      map[*slot]time.Time
	startups  startups
	cgroup    growth            // of the cgroup's held memory
	struck    map[uint64]strike // workers the cgroup check recycled or killed
	levels    []uint64          // asked of the cgroup last: above the usage, near, critical
	cgroupErr string            // the last error reading the cgroup, logged once
}

// strike is what the cgroup check did to a worker, and when.
type strike struct {
	killed bool
	at     time.Time
}

// strikeKept is how long a worker the cgroup check struck is remembered.
const strikeKept = 30 * time.Second

func newGuardState() *guardState {
	return &guardState{workers: map[*slot]*watched{}, meters: map[*slot]*meter{}, next: map[*slot]time.Time{},
		struck: map[uint64]strike{}}
}

// meter returns the slot's meter.
func (gs *guardState) meter(sl *slot) *meter {
	mt := gs.meters[sl]
	if mt == nil {
		mt = &meter{}
		gs.meters[sl] = mt
	}
	return mt
}

// due reports whether the slot's worker is to be sampled now: its time
// has come, the slot has a worker the sampler has not seen yet, or its
// worker changed state (it became ready: it may be recycled from now on).
func (gs *guardState) due(sl *slot, now time.Time) bool {
	sl.mu.Lock()
	ws := sl.view.status
	sl.mu.Unlock()
	wt := gs.workers[sl]
	return wt == nil || wt.status.Key != ws.Key || wt.status.State != ws.State || !now.Before(gs.next[sl])
}

// interval is how long to wait before the next sample of a worker: the
// Guard's interval once its growth is known, Near until then.
func (wt *watched) interval(g Guard) time.Duration {
	if !wt.known {
		return g.Near
	}
	return g.interval(wt.mem, wt.at, wt.rate)
}

// note records a sample r of the slot's worker ws, and counts its start-up
// time once it is ready.
func (gs *guardState) note(sl *slot, ws WorkerStatus, r reading, now time.Time) *watched {
	wt := gs.workers[sl]
	if wt == nil || wt.status.Key != ws.Key {
		wt = &watched{}
		gs.workers[sl] = wt
	}
	wt.status, wt.measure = ws, r.measure
	wt.add(r.mem, now)
	if !wt.timed && ws.State == StateReady && !ws.ReadySince.IsZero() && !ws.Started.IsZero() {
		wt.timed = true
		gs.startups.add(ws.ReadySince.Sub(ws.Started))
	}
	return wt
}

// lost forgets the slot's worker, which could not be measured.
func (gs *guardState) lost(sl *slot) {
	delete(gs.workers, sl)
	delete(gs.meters, sl)
	delete(gs.next, sl)
}

// forget drops the slots scaled away and old strikes.
func (gs *guardState) forget(seen map[*slot]bool) {
	for sl := range gs.next {
		if !seen[sl] {
			delete(gs.next, sl)
		}
	}
	for sl := range gs.workers {
		if !seen[sl] {
			delete(gs.workers, sl)
		}
	}
	for sl := range gs.meters {
		if !seen[sl] {
			delete(gs.meters, sl)
		}
	}
	for key, st := range gs.struck {
		if time.Since(st.at) > strikeKept {
			delete(gs.struck, key)
		}
	}
}

// judge acts on a worker's last sample as the Guard says: SIGKILL above
// the hard limit; a recycle past the memory at which it is recycled, once
// it serves (its slot holds it back in a memory loop, unless it was
// recycled early for its growth); and when that recycle waits in the
// replacer's queue, or its replacement is still starting, while the worker
// would reach the hard limit before it could drain, a stop at once, the
// replacement after.
func (s *Supervisor) judge(sl *slot, wt *watched, g Guard, lead time.Duration) {
	ws := wt.status
	wt.at = g.recycleAt(wt.rate, lead)
	switch g.decide(wt.mem, wt.at) {
	case guardKill:
		sl.mail.post(event{kind: evKill, key: ws.Key, detail: g.overHard(wt.mem, wt.measure)})
	case guardRecycle:
		if ws.State != StateReady {
			return
		}
		wasAsked := wt.asked
		wt.asked = true
		sl.mail.post(event{kind: evRecycle, key: ws.Key, reason: EndMaxMemory,
			detail: g.recycleReason(wt.mem, wt.measure, wt.rate, lead), early: wt.mem <= g.Budget})
		if wasAsked && !wt.urged && g.drainNow(wt.mem, wt.rate) {
			wt.urged = true
			sl.mail.post(event{kind: evReplace, req: &replaceRequest{key: ws.Key, reason: EndMaxMemory,
				detail: g.beforeHard(wt.mem, wt.measure, wt.rate), stopFirst: true}})
		}
	}
}

// leadTime is how long a memory recycle asked for now takes until the old
// worker is gone: the wait for the replacements under way or queued, the
// replacement's start-up when it starts first (a spare slot), the drain,
// and a sampling interval, for a crossing seen late.
func (s *Supervisor) leadTime(g Guard, startup time.Duration, now time.Time) time.Duration {
	per := g.Drain
	if s.spareSlot() {
		per += startup
	}
	return s.backlog(per, now) + per + g.Near
}

// backlog is how long a replacement queued now waits for the one under way
// and those queued before it, each expected to take per.
func (s *Supervisor) backlog(per time.Duration, now time.Time) time.Duration {
	var wait time.Duration
	if since := s.replacing.Load(); since != 0 {
		wait = max(0, per-now.Sub(time.Unix(0, since)))
	}
	return wait + time.Duration(len(s.recycles))*per
}
