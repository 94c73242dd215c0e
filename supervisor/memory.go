package supervisor

import (
	"strings"
	"syscall"
	"time"
)

// sampler reads the resident memory of each slot's worker, for status and
// for the Guard. A worker is sampled every Guard.Every, or every Guard.Near
// once it is above NearPercent of its budget or growing towards the RSS
// at which it is recycled, so that only workers close to it are read
// often. An alarm of the memory cgroup (Config.Cgroup) samples every
// worker at once.
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
			s.sampleDue(now, gs, false)
		case <-alarms:
			s.sampleDue(time.Now(), gs, true)
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
		ws, rss, ok := s.sample(sl)
		if !ok {
			gs.lost(sl)
			continue
		}
		wt := gs.note(sl, ws, rss, now)
		s.judge(sl, wt, g, lead)
		// A tick's jitter must not push a sample a whole Near late.
		gs.next[sl] = now.Add(wt.interval(g) - g.Near/2)
	}
	gs.forget(seen)
	s.guardCgroup(gs, g, now)
}

// sample reads the resident memory of the slot's worker, whatever its
// state, and reports it to the slot.
func (s *Supervisor) sample(sl *slot) (WorkerStatus, uint64, bool) {
	sl.mu.Lock()
	ws := sl.view.status
	sl.mu.Unlock()
	if ws.Key == 0 || ws.PID == 0 {
		return ws, 0, false
	}
	f := s.fams.byKey(s.fams.keyFor(ws.Key))
	if f == nil {
		return ws, 0, false
	}
	rss, ok := s.fams.sample(f)
	if !ok {
		return ws, 0, false
	}
	sl.mail.post(event{kind: evSample, key: ws.Key, rss: rss})
	return ws, rss, true
}

// diagnose says why a worker died, as far as percore can tell: a SIGKILL
// that the memory cgroup counts as an OOM kill is reported as one; any other
// death with the worker's last output lines.
func (s *Supervisor) diagnose(w *worker, e Exit) {
	if e.Signal == syscall.SIGKILL && s.oomKilled() {
		w.log.Error("worker was killed by the kernel OOM killer (memory cgroup limit reached)",
			"hint", "lower --heap, --workers or --max-memory, or give the container more memory")
		return
	}
	if lines := w.tail.Lines(); len(lines) > 0 {
		w.log.Error("worker's last output", "lines", strings.Join(lines, "\n"))
	}
}

// oomKilled reports whether the OOM kill count grew since it was last read.
func (s *Supervisor) oomKilled() bool {
	if s.cfg.OOM == nil {
		return false
	}
	n, err := s.cfg.OOM.Count()
	if err != nil {
		return false
	}
	return s.ooms.Swap(n) < n
}
