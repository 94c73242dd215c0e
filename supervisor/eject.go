package supervisor

import (
	"time"
)

// EjectGrace is how long an ejected worker has between the stop signal and
// SIGKILL: a worker whose event loop is blocked never handles the signal.
const EjectGrace = 2 * time.Second

// Eject takes the serving worker with key out of rotation at once and
// restarts it, for example after failed health checks. The restart counts
// in WorkerStatus.Restarts with reason as its LastReason. Keys that do not
// serve (any more) are ignored: an ejection never touches the worker that
// replaced the one it was meant for.
func (s *Supervisor) Eject(key uint64, reason EndReason) {
	s.post(key, event{kind: evEject, key: key, reason: reason})
}

// SetHealthFailures records a worker's consecutive failed health checks, for
// status.
func (s *Supervisor) SetHealthFailures(key uint64, n int) {
	s.post(key, event{kind: evHealth, key: key, n: n})
}

// OutOfRotation records that the traffic side sends the worker with key no
// requests until until, for example after requests to it failed in a row.
// Its slot shows NotRoutedEjected meanwhile; the worker is not restarted.
func (s *Supervisor) OutOfRotation(key uint64, until time.Time) {
	s.post(key, event{kind: evOutOfRotation, key: key, until: until})
}

// post sends ev to the slot whose current worker has key; nothing when none
// has.
func (s *Supervisor) post(key uint64, ev event) {
	if sl := s.slotOf(key); sl != nil {
		sl.mail.post(ev)
	}
}
