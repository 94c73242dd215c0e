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
	// Near from the start, so that a guard a new plan turns on samples
	// as often as one on from the start.
	tick := s.guard().Near
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
		g := s.guard()
		next[sl] = now.Add(g.interval(rss) - g.Near/2)
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
	f := s.fams.byKey(s.fams.keyFor(ws.Key))
	if f == nil {
		return 0, false
	}
	rss, ok := s.fams.sample(f)
	if !ok {
		return 0, false
	}
	sl.mail.post(event{kind: evSample, key: ws.Key, rss: rss})
	g := s.guard()
	switch g.decide(rss) {
	case guardKill:
		sl.mail.post(event{kind: evKill, key: ws.Key, reason: g.overHard(rss)})
	case guardRecycle:
		if ws.State == StateReady {
			s.recycle(ws.Key, "max-memory", g.overBudget(rss))
		}
	}
	return rss, true
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
