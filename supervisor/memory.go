package supervisor

import (
	"strings"
	"syscall"
	"time"
)

// sampler reads the resident memory of each slot's worker, for status and
// for the Guard. A worker is sampled every Guard.Every, or every Guard.Near
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
// state, records it and acts on it as the Guard says.
func (s *Supervisor) sample(sl *slot) (uint64, bool) {
	sl.mu.Lock()
	w, state := sl.cur, sl.state
	sl.mu.Unlock()
	if w == nil {
		return 0, false
	}
	rss, ok := groupRSS(w.pid)
	if !ok {
		return 0, false
	}
	sl.mu.Lock()
	if sl.cur == w {
		sl.rss = rss
	}
	sl.mu.Unlock()
	switch s.cfg.Guard.decide(rss) {
	case guardKill:
		s.killOverHard(sl, w, rss)
	case guardRecycle:
		if state == StateReady {
			s.recycle(w.key, "max-memory", s.cfg.Guard.overBudget(rss))
		}
	}
	return rss, true
}

// killOverHard takes a worker above the Guard's hard limit out of rotation
// and kills its group at once; the slot's loop sees the exit and records
// the reason.
func (s *Supervisor) killOverHard(sl *slot, w *worker, rss uint64) {
	reason := s.cfg.Guard.overHard(rss)
	sl.mu.Lock()
	if sl.cur != w || sl.killed != "" {
		sl.mu.Unlock()
		return
	}
	sl.killed = reason
	if sl.state == StateReady {
		sl.state, sl.readySince = StateDraining, time.Time{}
	}
	sl.mu.Unlock()
	w.log.Error("killing worker", "reason", reason)
	s.cfg.Router.Drain(w.key)
	s.killGroup(w)
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
