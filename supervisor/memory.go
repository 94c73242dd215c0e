package supervisor

import (
	"strings"
	"time"
)

// sampler reads the memory of each slot's worker, for status and for the
// Guard, and the OOM kill count, so that a kill is dated within a tick. A
// worker is sampled every Guard.Every, or every Guard.Near once it is above
// NearPercent of its budget, so that only workers close to their budget
// are read often; its PSS is read at most every Guard.Every (see meter).
func (s *Supervisor) sampler() {
	defer s.loops.Done()
	tick := s.cfg.Guard.Every
	if s.cfg.Guard.On() {
		tick = s.cfg.Guard.Near
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	sp := sampling{next: map[*slot]time.Time{}, meters: map[*slot]*meter{}}
	for {
		select {
		case <-s.stopping:
			return
		case now := <-t.C:
			s.ooms.observe(now)
			s.sampleDue(now, sp)
		}
	}
}

// sampling is the sampler's own record of each slot: when its next sample
// is due, and its worker's meter.
type sampling struct {
	next   map[*slot]time.Time
	meters map[*slot]*meter
}

// sampleDue samples the slots whose next sample is due and plans the next.
func (s *Supervisor) sampleDue(now time.Time, sp sampling) {
	slots := s.slotList()
	seen := make(map[*slot]bool, len(slots))
	for _, sl := range slots {
		seen[sl] = true
		if now.Before(sp.next[sl]) {
			continue
		}
		mt := sp.meters[sl]
		if mt == nil {
			mt = &meter{}
			sp.meters[sl] = mt
		}
		r, ok := s.sample(sl, mt, now)
		if !ok {
			sp.next[sl] = time.Time{}
			continue
		}
		// A tick's jitter must not push a sample a whole Near late.
		sp.next[sl] = now.Add(s.cfg.Guard.intervalGrowing(r.mem, r.grew, r.elapsed) - s.cfg.Guard.Near/2)
	}
	for sl := range sp.next {
		if !seen[sl] {
			delete(sp.next, sl)
			delete(sp.meters, sl)
		}
	}
}

// sample reads the memory of the slot's worker (see groupMemory), whatever
// its state, reports it to the slot and acts on it as the Guard says.
func (s *Supervisor) sample(sl *slot, mt *meter, now time.Time) (reading, bool) {
	sl.mu.Lock()
	ws := sl.view.status
	sl.mu.Unlock()
	if ws.Key == 0 || ws.PID == 0 {
		return reading{}, false
	}
	// A PSS reading a little less often than every Every sample, so that
	// a tick's jitter never skips one.
	r, ok := mt.read(ws.Key, ws.PID, now, s.cfg.Guard.Every-s.cfg.Guard.Near/2)
	if !ok {
		return reading{}, false
	}
	sl.mail.post(event{kind: evSample, key: ws.Key, mem: r.mem, measure: r.measure})
	switch s.cfg.Guard.decide(r.mem) {
	case guardKill:
		sl.mail.post(event{kind: evKill, key: ws.Key, reason: s.cfg.Guard.overHard(r.mem, r.measure)})
	case guardRecycle:
		if ws.State == StateReady {
			s.recycle(ws.Key, reasonMaxMemory, s.cfg.Guard.overBudget(r.mem, r.measure))
		}
	}
	return r, true
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
