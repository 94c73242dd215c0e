package supervisor

import (
	"strings"
	"time"
)

// sampler reads the memory of each slot's worker, for status and for the
// Guard, and the OOM kill count, so that a kill is dated within a tick. A
// worker is sampled every Guard.Every, or every Guard.Near once it is above
// NearPercent of its budget or growing towards it or the memory at which
// it is recycled, so that only workers close to it are read often; its
// PSS is read at most every Guard.Every (see meter). An alarm of the
// memory cgroup (Config.Cgroup) samples every worker at once.
func (s *Supervisor) sampler() {
	defer s.loops.Done()
	// Near from the start, so that a guard a new plan turns on samples
	// as often as one on from the start.
	tick := s.guard().Near
	t := time.NewTicker(tick)
	defer t.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	gs := newGuardState()
	alarms := s.alarms()
	for {
		select {
		case <-s.stopping:
			return
		case now := <-t.C:
			s.ooms.observe(now)
			s.sampleDue(now, gs, false)
		case <-alarms:
			now := time.Now()
			s.ooms.observe(now)
			s.sampleDue(now, gs, true)
			// Alarms that come faster than alarmGap (reclaim at the
			// limit) wait, so that they cannot keep the sampler busy.
			alarms = nil
			gap.Reset(alarmGap)
		case <-gap.C:
			alarms = s.alarms()
		}
	}
}

// sampleDue samples the slots whose next sample is due, or all of them,
// acts on what it finds as the Guard says and plans the next samples.
func (s *Supervisor) sampleDue(now time.Time, gs *guardState, all bool) {
	g := s.guard()
	lead := s.leadTime(g, gs.startups.longest(), now)
	slots := s.slotList()
	seen := make(map[*slot]bool, len(slots))
	for _, sl := range slots {
		seen[sl] = true
		if !all && !gs.due(sl, now) {
			continue
		}
		ws, r, ok := s.sample(sl, gs.meter(sl), g, now)
		if !ok {
			gs.lost(sl)
			continue
		}
		wt := gs.note(sl, ws, r, now)
		s.judge(sl, wt, g, lead)
		// A tick's jitter must not push a sample a whole Near late.
		gs.next[sl] = now.Add(wt.interval(g) - g.Near/2)
	}
	gs.forget(seen)
	s.guardCgroup(gs, g, now)
}

// sample reads the memory of the slot's worker with its meter (see
// treeMemory), whatever its state, and reports it to the slot.
func (s *Supervisor) sample(sl *slot, mt *meter, g Guard, now time.Time) (WorkerStatus, reading, bool) {
	sl.mu.Lock()
	ws := sl.view.status
	sl.mu.Unlock()
	if ws.Key == 0 || ws.PID == 0 {
		return ws, reading{}, false
	}
	f := s.fams.byKey(s.fams.keyFor(ws.Key))
	if f == nil {
		return ws, reading{}, false
	}
	// A PSS reading a little less often than every Every sample, so that
	// a tick's jitter never skips one.
	r, ok := mt.read(ws.Key, now, g.Every-g.Near/2, func(pss bool) (treeUse, bool) { return s.fams.sample(f, pss) })
	if !ok {
		return ws, reading{}, false
	}
	sl.mail.post(event{kind: evSample, key: ws.Key, mem: r.mem, measure: r.measure})
	return ws, r, true
}

// diagnose logs the last output lines of a worker that died, unless the
// kernel's OOM killer ended it: watchExit said so already.
func (s *Supervisor) diagnose(w *worker, e Exit) {
	if e.OOMKilled {
		return
	}
	if lines := w.tail.Lines(); len(lines) > 0 {
		w.log.Error("worker's last output", "lines", strings.Join(lines, "\n"))
	}
}
