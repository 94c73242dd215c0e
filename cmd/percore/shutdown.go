package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/cmd/percore/internal/earlysignal"
	"github.com/percore/percore/proxy"
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

// answerGrace bounds the proxy's wait, once every worker is gone, for the
// requests it still holds: a request whose worker was killed at the
// deadline gets its 502 in that moment, instead of a connection closed
// without an answer when percore exits. It ends as soon as they are
// answered, a few milliseconds after the kill.
const answerGrace = time.Second

// stopProxy is the proxy's interrupt, the first of a stop in proxy mode,
// and it begins the whole stop at once: the public listener closes, and the
// workers start their stop beside the proxy's drain, each getting its stop
// signal as soon as nothing it serves is in flight, or, still busy, when
// only the handlers' share of the budget is left (supervisor.HandlerShare).
// It then waits for the proxy's requests: each ends with its worker's
// answer, or with 502 when its worker was killed at the deadline, until
// drain ends: answerGrace after the last worker is gone (see graceAfter).
//
// The supervisor's stop must not wait for the proxy's drain: a request
// running until the deadline would then leave every worker, idle ones
// included, to SIGKILL without a stop signal.
func (a *actors) stopProxy(serve *proxy.Serve, drain context.Context) {
	ctx := a.sd.begin()
	serve.Close()
	a.sup.Stop(ctx)
	serve.Stop(drain)
}

// graceAfter returns a context that ends grace after done closes. Its end
// function ends it at once, and returns once its timer's goroutine has
// ended.
func graceAfter(done <-chan struct{}, grace time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go graceTimer(ctx, cancel, done, grace, ended)
	return ctx, func() {
		cancel()
		<-ended
	}
}

// graceTimer is graceAfter's goroutine: it cancels ctx grace after done
// closes, and closes ended when it returns.
func graceTimer(ctx context.Context, cancel context.CancelFunc, done <-chan struct{}, grace time.Duration,
	ended chan<- struct{}) {
	defer close(ended)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// lifecycle is what signals other than the stop signals act on.
type lifecycle interface {
	Reload()
	ScaleBy(delta int) (int, error)
}

// signals is the run.Group actor for the signals percore handles. The first
// TERM or INT starts a graceful stop; a second one, or QUIT, makes it fast.
// HUP reloads the workers one by one; TTIN adds a worker, TTOU removes one.
// As PID 1, percore handles each of these itself: the kernel ignores signals
// without a handler sent to PID 1.
type signals struct {
	log  hclog.Logger
	sd   *shutdown
	life lifecycle
	ch   chan os.Signal
	quit chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// catchSignals returns the channel that has been receiving the signals
// percore handles since the process started (see package earlysignal).
func catchSignals() chan os.Signal {
	ch := earlysignal.Channel()
	signal.Notify(ch, earlysignal.Signals...) // again, in case an earlier run released it
	return ch
}

// newSignals returns the signals actor reading ch, a channel from
// catchSignals.
func newSignals(log hclog.Logger, sd *shutdown, life lifecycle, ch chan os.Signal) *signals {
	return &signals{log: log, sd: sd, life: life, ch: ch, quit: make(chan struct{})}
}

// earlyStop takes the signals that came before the actors started. It
// returns the first stop signal (TERM, INT or QUIT), or nil; the others
// are logged and dropped, since there are no workers yet to reload or scale.
func earlyStop(ch <-chan os.Signal, log hclog.Logger) os.Signal {
	for {
		select {
		case sig := <-ch:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
				return sig
			case launcherGone:
				logLauncherGone(log)
				return syscall.SIGTERM
			}
			log.Info("signal before the workers started: nothing to do", "signal", sig.String())
		default:
			return nil
		}
	}
}

// lifecycleSignal acts on HUP, TTIN and TTOU; it reports false for the
// stop signals.
func (s *signals) lifecycleSignal(sig os.Signal) bool {
	switch sig {
	case syscall.SIGHUP:
		s.log.Info("reloading workers", "signal", sig.String())
		s.life.Reload()
	case syscall.SIGTTIN, syscall.SIGTTOU:
		delta := 1
		if sig == syscall.SIGTTOU {
			delta = -1
		}
		if _, err := s.life.ScaleBy(delta); err != nil {
			s.log.Warn("cannot scale", "signal", sig.String(), "error", err)
		}
	default:
		return false
	}
	return true
}

// logLauncherGone says why percore stops on launcherGone.
func logLauncherGone(log hclog.Logger) {
	log.Warn("the launcher that started percore has ended: stopping as on SIGTERM")
}

// errStopSignal says a signal ended the run; it is not a failure.
type errStopSignal struct{ sig os.Signal }

func (e errStopSignal) Error() string { return "stopped by " + e.sig.String() }

// run waits for the first signal and returns, which starts the stop of
// every other actor. A watcher for a second signal stays until interrupt.
func (s *signals) run() error {
	for {
		select {
		case sig := <-s.ch:
			if sig == launcherGone {
				logLauncherGone(s.log)
				return s.stopOn(syscall.SIGTERM)
			}
			if !s.lifecycleSignal(sig) {
				return s.stopOn(sig)
			}
		case <-s.quit:
			return nil
		}
	}
}

// stopOn starts the stop for the first stop signal.
func (s *signals) stopOn(sig os.Signal) error {
	s.log.Info("stopping gracefully", "signal", sig.String(), "budget", s.sd.timeout)
	s.sd.begin()
	if sig == syscall.SIGQUIT {
		s.log.Warn("stopping fast", "signal", sig.String())
		s.sd.hurry()
	}
	s.wg.Add(1)
	go s.watchSecond()
	return errStopSignal{sig: sig}
}

// watchSecond turns a second signal into a fast stop.
func (s *signals) watchSecond() {
	defer s.wg.Done()
	for {
		select {
		case sig := <-s.ch:
			if sig == syscall.SIGHUP || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU {
				continue // no reload or scaling while stopping
			}
			if sig == launcherGone {
				continue // the launcher's end, again, or after another stop signal
			}
			s.log.Warn("second signal: stopping fast", "signal", sig.String())
			s.sd.hurry()
			return
		case <-s.quit:
			return
		}
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
