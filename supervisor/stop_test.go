package supervisor

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestHandlerShare(t *testing.T) {
	for _, c := range []struct{ budget, want time.Duration }{
		{300 * time.Millisecond, 300 * time.Millisecond}, // never more than the budget
		{time.Second, time.Second},
		{3 * time.Second, time.Second}, // at least 1s
		{8 * time.Second, 2 * time.Second},
		{25 * time.Second, 6250 * time.Millisecond},
		{40 * time.Second, 10 * time.Second},
		{5 * time.Minute, 10 * time.Second}, // at most 10s
	} {
		if got := HandlerShare(c.budget); got != c.want {
			t.Errorf("HandlerShare(%s) = %s, want %s", c.budget, got, c.want)
		}
	}
}

// quickExit spares a fake worker built with -race the race detector's
// second of sleep at exit, which a stop's timings would count.
const quickExit = "GORACE=atexit_sleep_ms=0"

// busyRouter is a Router whose workers each have one request in flight
// until done is closed.
type busyRouter struct {
	*recordingRouter
	done   chan struct{}
	drains atomic.Int32 // Drain calls
}

// busy makes the rig's router a busyRouter; use it as newRig's mutate.
func (r *busyRouter) busy(timeout time.Duration) func(*Config) {
	return func(c *Config) {
		r.recordingRouter = c.Router.(*recordingRouter)
		c.Router = r
		c.ShutdownTimeout = timeout
	}
}

func (r *busyRouter) Idle(uint64) <-chan struct{} { return r.done }

func (r *busyRouter) Drain(key uint64) <-chan struct{} {
	r.drains.Add(1)
	r.recordingRouter.Drain(key)
	return r.done
}

func (r *busyRouter) InFlight(uint64) int {
	select {
	case <-r.done:
		return 0
	default:
		return 1
	}
}

// stopWithin stops the rig within budget and returns how long Run took to
// return.
func (r *testRig) stopWithin(t *testing.T, budget time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	r.sup.Stop(ctx)
	select {
	case <-r.errc:
	case <-time.After(budget + 10*time.Second):
		t.Fatal("Run did not return")
	}
	r.errc <- nil
	return time.Since(start)
}

func TestStopSignalsABusyWorkerWithTheHandlersShareLeft(t *testing.T) {
	const budget = 4 * time.Second // HandlerShare: 1s
	r := &busyRouter{done: make(chan struct{})}
	rig := newRig(t, "serve", 1, r.busy(budget), quickExit)
	rig.waitAdded(t)
	took := rig.stopWithin(t, budget)
	ws := rig.sup.Snapshot()[0]
	if took < budget-HandlerShare(budget)-200*time.Millisecond || ws.LastExit == nil || ws.LastExit.Code != 0 {
		t.Errorf("a busy worker that exits on SIGTERM stopped after %s with %v; want its exit 0 once %s of %s are left",
			took, ws.LastExit, HandlerShare(budget), budget)
	}
	if want := (StopRecord{End: StopEndBusy, InFlight: 1, Counted: CountedRequests}); ws.LastStop == nil || *ws.LastStop != want {
		t.Errorf("stop record %+v, want %+v", ws.LastStop, want)
	}
	if !strings.Contains(rig.log.String(), "requests_in_flight=1") {
		t.Errorf("the log does not count the request in flight at the stop signal:\n%s", rig.log.String())
	}
}

func TestStopSignalsAWorkerOnceIdleAndDrainsItOnlyThen(t *testing.T) {
	const budget = 8 * time.Second
	r := &busyRouter{done: make(chan struct{})}
	rig := newRig(t, "serve", 1, r.busy(budget), quickExit)
	rig.waitAdded(t)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	rig.sup.Stop(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for rig.sup.Snapshot()[0].State != StateDraining && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.drains.Load(); n != 0 {
		t.Errorf("the worker was drained %d times before it was idle; a stop keeps it routed until then", n)
	}
	close(r.done)
	<-rig.errc
	rig.errc <- nil
	ws := rig.sup.Snapshot()[0]
	if took := time.Since(start); took > budget-HandlerShare(budget) || ws.LastExit == nil || ws.LastExit.Code != 0 {
		t.Errorf("an idle worker stopped after %s with %v, want at once with exit 0", took, ws.LastExit)
	}
	if want := (StopRecord{End: StopEndDrained, Counted: CountedRequests}); ws.LastStop == nil || *ws.LastStop != want {
		t.Errorf("stop record %+v, want %+v", ws.LastStop, want)
	}
}

func TestStopSignalsABusyWorkerBeforeItKillsIt(t *testing.T) {
	const budget = 2 * time.Second // HandlerShare: 1s
	r := &busyRouter{done: make(chan struct{})}
	rig := newRig(t, "ignore-term", 1, r.busy(budget))
	rig.waitAdded(t)
	took := rig.stopWithin(t, budget)
	ws := rig.sup.Snapshot()[0]
	if ws.LastExit == nil || ws.LastExit.Signal != syscall.SIGKILL || took < budget-200*time.Millisecond {
		t.Errorf("a worker that ignores SIGTERM ended with %v after %s, want SIGKILL at the %s deadline", ws.LastExit, took, budget)
	}
	if want := (StopRecord{End: StopEndKilled, InFlight: 1, Cut: 1, Counted: CountedRequests}); ws.LastStop == nil || *ws.LastStop != want {
		t.Errorf("stop record %+v, want %+v", ws.LastStop, want)
	}
	log := rig.log.String()
	signalled, killed := strings.Index(log, "sending the stop signal"), strings.Index(log, "killing worker process group")
	if signalled < 0 || killed < signalled || !strings.Contains(log[killed:], "requests_cut=1") {
		t.Errorf("the log does not show the stop signal, then the kill with the request cut:\n%s", log)
	}
}
