package health

import (
	"fmt"
	"strings"
)

// NotReadyWorkers is what a Workers may also tell: why some workers that
// serve do not count as ready. /readyz?verbose lists it.
type NotReadyWorkers interface {
	// NotReady returns one line per such worker, such as "worker 0 not
	// accepting: accept queue full: 128 of 128".
	NotReady() []string
}

// starting returns why /readyz does not yet answer 200 while fewer than
// Config.StartWorkers were ever ready at once, or "".
func (s *Server) starting(ready int) string {
	if s.cfg.StartWorkers == nil || s.started.Load() {
		return ""
	}
	if need := s.cfg.StartWorkers(); ready < need {
		return fmt.Sprintf("starting: %d of the %d first workers are ready", ready, need)
	}
	s.started.Store(true)
	return ""
}

// notReady is NotReadyWorkers' lines, each ending in a newline, or "".
func (s *Server) notReady() string {
	nr, ok := s.cfg.Workers.(NotReadyWorkers)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, line := range nr.NotReady() {
		b.WriteString(line + "\n")
	}
	return b.String()
}
