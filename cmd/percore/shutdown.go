package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/supervisor"
)

// shutdown holds the one budget of a stop. The first call of begin starts
// the clock; every phase of the stop (drain, stop signal, SIGKILL) uses the
// same deadline. hurry cuts it short.
type shutdown struct {
	timeout time.Duration
	onBegin func()

	once    sync.Once
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release context.CancelFunc
}

// begin starts the stop, once, and returns its context: it ends at the
// deadline (cause context.DeadlineExceeded) or on hurry (cause
// supervisor.ErrHurry).
func (s *shutdown) begin() context.Context {
	s.once.Do(func() {
		base, cancel := context.WithCancelCause(context.Background())
		s.ctx, s.release = context.WithDeadline(base, time.Now().Add(s.timeout))
		s.cancel = cancel
		if s.onBegin != nil {
			s.onBegin()
		}
	})
	return s.ctx
}

// close releases the stop's timer once everything has stopped.
func (s *shutdown) close() {
	s.begin()
	s.release()
	s.cancel(nil)
}

// hurry turns the stop into a fast one.
func (s *shutdown) hurry() {
	s.begin()
	s.cancel(supervisor.ErrHurry)
}

// signals is the run.Group actor for TERM, INT and QUIT. The first TERM or
// INT starts a graceful stop; a second one, or QUIT, makes it fast.
type signals struct {
	log  hclog.Logger
	sd   *shutdown
	ch   chan os.Signal
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newSignals(log hclog.Logger, sd *shutdown) *signals {
	s := &signals{log: log, sd: sd, ch: make(chan os.Signal, 4), quit: make(chan struct{})}
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	return s
}

// errStopSignal says a signal ended the run; it is not a failure.
type errStopSignal struct{ sig os.Signal }

func (e errStopSignal) Error() string { return "stopped by " + e.sig.String() }

// run waits for the first signal and returns, which starts the stop of
// every other actor. A watcher for a second signal stays until interrupt.
func (s *signals) run() error {
	select {
	case sig := <-s.ch:
		s.log.Info("stopping gracefully", "signal", sig.String(), "budget", s.sd.timeout)
		s.sd.begin()
		if sig == syscall.SIGQUIT {
			s.log.Warn("stopping fast", "signal", sig.String())
			s.sd.hurry()
		}
		s.wg.Add(1)
		go s.watchSecond()
		return errStopSignal{sig: sig}
	case <-s.quit:
		return nil
	}
}

// watchSecond turns a second signal into a fast stop.
func (s *signals) watchSecond() {
	defer s.wg.Done()
	select {
	case sig := <-s.ch:
		s.log.Warn("second signal: stopping fast", "signal", sig.String())
		s.sd.hurry()
	case <-s.quit:
	}
}

// interrupt ends run and the watcher; it is called last, after every other
// actor has stopped.
func (s *signals) interrupt(error) {
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		signal.Stop(s.ch)
	})
}
