package supervisor

import (
	"syscall"
	"time"
)

// LeftoverGrace is how long the processes a worker started outside its
// process group have, once the worker is gone, between the stop signal and
// SIGKILL. A stop's deadline cuts it short.
const LeftoverGrace = 2 * time.Second

// leftoverKillRounds bounds how often endLeftovers looks again for
// processes started while it killed the others.
const leftoverKillRounds = 3

// sample measures the memory of f's worker tree, its PSS too when pss is
// set (see treeMemory), and remembers its processes. It reports false once
// the worker has ended.
func (fs *families) sample(f *family, pss bool) (treeUse, bool) {
	tree, u, ok := treeMemory(f.root, pss)
	if !ok {
		return treeUse{}, false
	}
	f.observe(tree)
	f.prune(tree, fs.src)
	return u, true
}

// signalFamily sends the stop signal to the worker's process group and to
// the processes it started outside the group, once each: a second TERM
// means "hurry" to many programs.
func (s *Supervisor) signalFamily(w *worker) {
	out := outsideGroup(s.fams.members(w.fam), w.pid)
	if err := w.signal(s.cfg.StopSignal); err != nil {
		w.log.Warn("send stop signal", "error", err)
	}
	unsent, _ := w.fam.unstopped(out)
	w.fam.noteStop(s.signalAll(w, unsent, s.cfg.StopSignal))
}

// signalAll sends sig to the processes ps of w and returns those that got
// it; those that have ended are skipped.
func (s *Supervisor) signalAll(w *worker, ps []proc, sig syscall.Signal) []proc {
	var sent []proc
	for _, p := range ps {
		ok, err := signalProc(p, sig)
		if err != nil {
			w.log.Warn("cannot signal a process the worker started", "process", p.pid, "signal", sig.String(), "error", err)
			continue
		}
		if ok {
			sent = append(sent, p)
		}
	}
	return sent
}

// endLeftovers ends the processes a gone worker started outside its
// process group: the stop signal to those that did not get it with the
// worker's, then SIGKILL to those left after LeftoverGrace (or at the
// stop's deadline) and to any they started meanwhile. It logs what it
// ended, and then forgets the worker's family. The slot's cleanup starts
// it; s.helpers counts it, so Run returns only after it.
func (s *Supervisor) endLeftovers(w *worker) {
	defer s.helpers.Done()
	defer s.fams.remove(w.fam)
	left := outsideGroup(s.fams.members(w.fam), w.pid)
	if len(left) == 0 {
		return
	}
	unsent, stopped := w.fam.unstopped(left)
	s.signalAll(w, unsent, s.cfg.StopSignal)
	rest := awaitEnd(left, s.leftoverDeadline())
	killed := 0
	for round := 0; len(rest) > 0 && round < leftoverKillRounds; round++ {
		killed += len(s.signalAll(w, rest, syscall.SIGKILL))
		awaitEnd(rest, time.Now().Add(LeftoverGrace))
		rest = outsideGroup(s.fams.members(w.fam), w.pid)
	}
	logf := w.log.Warn // the worker exited on its own, or was killed
	if stopped {
		logf = w.log.Info // they got the stop signal with the worker
	}
	logf("worker left processes behind: ended them", "processes", len(left), "pids", pidsOf(left), "sigkill", killed)
	if len(rest) > 0 {
		w.log.Error("processes the worker started still run after SIGKILL", "pids", pidsOf(rest))
	}
}

// leftoverDeadline is when endLeftovers sends SIGKILL: after LeftoverGrace,
// or at the stop's deadline when that comes first.
func (s *Supervisor) leftoverDeadline() time.Time {
	d := time.Now().Add(LeftoverGrace)
	select {
	case <-s.stopping:
		if stop, ok := s.stopCtx.Deadline(); ok && stop.Before(d) {
			return stop
		}
	default:
	}
	return d
}

func pidsOf(ps []proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
}
