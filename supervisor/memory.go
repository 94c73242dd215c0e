package supervisor

import (
	"strings"
	"time"
)

// sampler reads the resident memory of each slot's worker, for status and
// for the Guard, and the OOM kill count, so that a kill is dated within a
// tick. A worker is sampled every Guard.Every, or every Guard.Near
// once it is above NearPercent of its budget, so that only workers close to
// their budget are read often.
func (s *Supervisor) sampler() {
	defer s.loops.Done()
	tick := s.cfg.Guard.Every
	if s.cfg.Guard.On() {
		tick = s.cfg.Guard.Near
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	next := map[*slot]time.Time{}
	for {
		select {
		case <-s.stopping:
			return
		case now := <-t.C:
			s.ooms.observe(now)
			s.sampleDue(now, next)
		}
	}
}

// sampleDue samples the slots whose next sample is due and plans the next.
func (s *Supervisor) sampleDue(now time.Time, next map[*slot]time.Time) {
	slots := s.slotList()
	seen := make(map[*slot]bool, len(slots))
	for _, sl := range slots {
		seen[sl] = true
		if now.Before(next[sl]) {
			continue
		}
		rss, ok := s.sample(sl)
		if !ok {
			next[sl] = time.Time{}
			continue
		}
		// A tick's jitter must not push a sample a whole Near late.
		next[sl] = now.Add(s.cfg.Guard.interval(rss) - s.cfg.Guard.Near/2)
	}
	for sl := range next {
		if !seen[sl] {
			delete(next, sl)
		}
	}
}

// sample reads the resident memory of the slot's worker, whatever its
// state, reports it to the slot and acts on it as the Guard says.
func (s *Supervisor) sample(sl *slot) (uint64, bool) {
	sl.mu.Lock()
	ws := sl.view.status
	sl.mu.Unlock()
	if ws.Key == 0 || ws.PID == 0 {
		return 0, false
	}
	rss, ok := groupRSS(ws.PID)
	if !ok {
		return 0, false
	}
	sl.mail.post(event{kind: evSample, key: ws.Key, rss: rss})
	switch s.cfg.Guard.decide(rss) {
	case guardKill:
		sl.mail.post(event{kind: evKill, key: ws.Key, reason: s.cfg.Guard.overHard(rss)})
	case guardRecycle:
		if ws.State == StateReady {
			s.recycle(ws.Key, reasonMaxMemory, s.cfg.Guard.overBudget(rss))
		}
	}
	return rss, true
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
