package supervisor

import (
	"errors"
	"syscall"
)

// shortageError says a worker could not be started, or its readiness not
// checked, because percore ran out of file descriptors, memory or processes
// (pipe2, socket or fork failing with EMFILE, ENFILE, ENOMEM or EAGAIN).
// It passes once descriptors are freed, so it never counts toward the
// crash-loop give-up: the slot retries with backoff.
type shortageError struct{ err error }

func (e *shortageError) Error() string { return e.err.Error() }

func (e *shortageError) Unwrap() error { return e.err }

// outOfResources reports whether err is such a shortage.
func outOfResources(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.ENOBUFS)
}

// recordShortage notes a start that failed for lack of resources. It leaves
// the count of failed starts alone.
func (m *machine) recordShortage(err error) {
	m.fx.count(EndShortage)
	m.rec.lastReason = EndShortage.String() + ": " + err.Error()
}
