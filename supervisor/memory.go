package supervisor

import (
	"strings"
	"syscall"
	"time"
)

// sampler reads each serving worker's resident memory every SampleInterval,
// for status and for recycling workers above MaxMemory.
func (s *Supervisor) sampler() {
	defer s.loops.Done()
	t := time.NewTicker(s.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			s.sampleAll()
		}
	}
}

func (s *Supervisor) sampleAll() {
	for _, sl := range s.slotList() {
		w := sl.current()
		if w == nil {
			continue
		}
		rss, ok := groupRSS(w.pid)
		if !ok {
			continue
		}
		sl.mu.Lock()
		if sl.cur == w {
			sl.rss = rss
		}
		sl.mu.Unlock()
		if s.cfg.MaxMemory > 0 && rss > s.cfg.MaxMemory {
			w.log.Warn("worker is above --max-memory", "rss_mib", rss>>20, "max_mib", s.cfg.MaxMemory>>20)
			s.Recycle(w.key, "max-memory")
		}
	}
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
