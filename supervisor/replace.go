package supervisor

import (
	"context"
	"errors"
	"strings"
	"time"
)

// ReloadStatus tells how the last rolling reload went. It holds nothing the
// app printed: that may be a secret (an app that prints its DATABASE_URL
// before it crashes), and the status is shown to whoever reaches the admin
// listener. The new worker's output goes to the log only.
type ReloadStatus struct {
	State string // "", "running", "done" or "failed"
	// Error says why the reload failed, in percore's words (the exit code
	// or signal, not ready in time, died on probation, ...), and where the
	// details are.
	Error    string
	Started  time.Time // when it started
	Finished time.Time // when it ended
	Count    int       // reloads started since percore started
	Replaced int       // workers this reload replaced
}

// Took is how long the reload ran; zero while it runs.
func (r ReloadStatus) Took() time.Duration {
	if r.Finished.IsZero() || r.Started.IsZero() {
		return 0
	}
	return r.Finished.Sub(r.Started)
}

// Reload starts a rolling reload: one worker at a time is replaced by a new
// one running the current code, which must be ready, and then serve beside
// the old one for Config.Probation, before the old one drains. If a
// replacement fails, at start or on probation, the reload stops and the old
// workers keep serving. A Reload during a reload starts it over. Reload
// returns at once.
func (s *Supervisor) Reload() {
	select {
	case s.reloads <- struct{}{}:
	default: // one is pending already
	}
}

// ReloadWait starts a rolling reload like Reload and waits until a reload
// that started after the call has ended; it returns that reload's status.
// It returns ctx's error when ctx ends first, and an error when the
// supervisor stops first.
func (s *Supervisor) ReloadWait(ctx context.Context) (ReloadStatus, error) {
	answer := make(chan ReloadStatus, 1)
	s.mu.Lock()
	s.waiters = append(s.waiters, answer)
	s.mu.Unlock()
	s.Reload()
	select {
	case r := <-answer:
		return r, nil
	case <-ctx.Done():
		return ReloadStatus{}, ctx.Err()
	case <-s.stopping:
		return ReloadStatus{}, errStopping
	}
}

// Recycle replaces the worker with key, for example after it served its
// maximum number of requests: the replacement starts first when
// Config.SpareSlot says it fits, else the worker is drained and stopped
// first. Keys that are not serving, or already queued, are ignored.
func (s *Supervisor) Recycle(key uint64, reason EndReason) {
	s.recycle(key, reason, "")
}

// recycle asks the slot of the worker with key to queue its recycling;
// detail, when set, is the reason the log and /status give.
func (s *Supervisor) recycle(key uint64, reason EndReason, detail string) {
	s.post(key, event{kind: evRecycle, key: key, reason: reason, detail: detail})
}

// recycle asks for one worker's replacement.
type recycle struct {
	key    uint64
	reason EndReason // counted
	detail string    // shown, when set
}

func (r recycle) shown() string {
	if r.detail != "" {
		return r.detail
	}
	return r.reason.String()
}

// ReloadState returns the status of the last reload.
func (s *Supervisor) ReloadState() ReloadStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload
}

// slotOf finds the slot whose current worker has key.
func (s *Supervisor) slotOf(key uint64) *slot {
	if key == 0 {
		return nil
	}
	for _, sl := range s.slotList() {
		sl.mu.Lock()
		k := sl.view.status.Key
		sl.mu.Unlock()
		if k == key {
			return sl
		}
	}
	return nil
}

// replacer runs reloads and recycles one replacement at a time, so at most
// one extra worker runs at any moment.
func (s *Supervisor) replacer() {
	defer s.loops.Done()
	for {
		select {
		case <-s.stopping:
			return
		case <-s.reloads:
			s.runReload()
		case r := <-s.recycles:
			if sl := s.slotOf(r.key); sl != nil {
				req := &replaceRequest{key: r.key, reason: r.reason, detail: r.detail, stopFirst: !s.spareSlot()}
				if err := s.replaceSlot(sl, req); err != nil && err != errStopping {
					s.log.Error("recycle failed; the worker keeps serving", "worker", sl.id, "error", err)
				}
			}
		}
	}
}

// runReload replaces every worker in turn.
func (s *Supervisor) runReload() {
	s.setReload(ReloadStatus{State: "running", Started: time.Now()}, true)
	waiting := s.takeWaiters(nil)
	s.log.Info("reload started")
	replaced := 0
	for restart := true; restart; {
		restart = false
		for _, sl := range s.slotList() {
			select {
			case <-s.reloads:
				s.log.Info("reload requested again: starting over with the new code")
				waiting = s.takeWaiters(waiting)
				restart = true
			default:
			}
			if restart {
				break
			}
			err := s.replaceSlot(sl, &replaceRequest{reason: EndReload, probation: true})
			if err == errStopping {
				return
			}
			if err != nil {
				output := newWorkerOutput(err)
				// Recorded before it is logged: whoever reads the log
				// line and then /status sees the failure there.
				st := s.endReload(ReloadStatus{State: "failed", Error: reloadError(err, output),
					Finished: time.Now(), Replaced: replaced})
				s.log.Error(failedReloadMessage(err, output))
				s.log.Error("the previous version is still serving: the old workers were kept; the next reload tries again",
					"replaced", replaced)
				tellWaiters(waiting, st)
				return
			}
			replaced++
		}
	}
	st := s.endReload(ReloadStatus{State: "done", Finished: time.Now(), Replaced: replaced})
	s.log.Info("reload done", "replaced", replaced)
	tellWaiters(waiting, st)
}

// takeWaiters moves the ReloadWait callers registered so far to the reload
// that starts now, after those it already had.
func (s *Supervisor) takeWaiters(had []chan ReloadStatus) []chan ReloadStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	had = append(had, s.waiters...)
	s.waiters = nil
	return had
}

// endReload records the end of a reload and returns its status.
func (s *Supervisor) endReload(r ReloadStatus) ReloadStatus {
	s.setReload(r, false)
	return s.ReloadState()
}

// tellWaiters tells the callers waiting for a reload how it ended.
func tellWaiters(waiting []chan ReloadStatus, r ReloadStatus) {
	for _, w := range waiting {
		w <- r // buffered 1, answered once
	}
}

// newWorkerOutput returns the last lines printed by the new worker whose
// start err reports, if any.
func newWorkerOutput(err error) []string {
	var se *startError
	if errors.As(err, &se) && se.w != nil {
		return se.w.tail.Lines()
	}
	return nil
}

// reloadError is the Error of a failed reload: err, which is in percore's
// words, and where to look for the new worker's output.
func reloadError(err error, output []string) string {
	if len(output) > 0 {
		return err.Error() + "; the new worker's output is in percore's log"
	}
	return err.Error() + "; see percore's log"
}

// failedReloadMessage says that a reload failed and shows what the new
// worker printed, each line marked as the new worker's, so that it stands
// apart from the output of the workers still serving.
func failedReloadMessage(err error, output []string) string {
	var b strings.Builder
	b.WriteString("RELOAD FAILED: ")
	var se *startError
	if errors.As(err, &se) && se.reason == EndProbation {
		b.WriteString("a new worker failed its probation: ")
	} else {
		b.WriteString("a new worker did not become ready: ")
	}
	b.WriteString(err.Error())
	if len(output) > 0 {
		b.WriteString("; the new worker's last output:")
		for _, l := range output {
			b.WriteString("\n    new worker | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (s *Supervisor) setReload(r ReloadStatus, starting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !starting {
		s.results[r.State]++
	}
	if starting {
		r.Count = s.reload.Count + 1
	} else {
		r.Started, r.Count = s.reload.Started, s.reload.Count
	}
	s.reload = r
}

// replaceSlot asks the slot to replace its worker and waits until the old
// one is gone or the replacement failed.
func (s *Supervisor) replaceSlot(sl *slot, req *replaceRequest) error {
	s.replacing.Store(time.Now().UnixNano())
	defer s.replacing.Store(0)
	req.done = make(chan error, 1)
	sl.mail.post(event{kind: evReplace, req: req})
	select {
	case err := <-req.done:
		return err
	case <-sl.done:
	}
	select {
	case err := <-req.done:
		return err
	case <-s.stopping:
		return errStopping
	default:
		return nil // the slot was scaled away
	}
}
