package proxy

import (
	"testing"
	"time"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails the test unless ch closes within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

func TestIdleWaitsForRequestsAndTheQueue(t *testing.T) {
	p := newLimitedPool(1, 5, 10*time.Second, 1)
	first, err := acquireNow(p)
	if err != nil {
		t.Fatal(err)
	}
	idle := p.Idle(1)
	if isClosed(idle) {
		t.Fatal("Idle closed with a request in flight")
	}
	queued := make(chan *backend, 1)
	go func() {
		b, err := acquireNow(p)
		if err != nil {
			t.Errorf("queued request: %v", err)
		}
		queued <- b
	}()
	waitFor(t, 5*time.Second, "the request to queue", func() bool { return p.lim.Load().waiting.Load() == 1 })

	first.release() // its slot goes to the queued request
	second := <-queued
	if second == nil {
		t.FailNow()
	}
	if isClosed(idle) {
		t.Fatal("Idle closed while a queued request took the worker's slot")
	}
	var none triedSet
	if b, _ := p.choose(&none, nil); b != nil || len(*p.backends.Load()) != 1 {
		t.Error("the worker left the rotation, or its full slot was handed out, while waiting for Idle")
	}
	second.release()
	waitClosed(t, idle, time.Second, "Idle after the last request")
	if b, _ := p.choose(&none, nil); b == nil {
		t.Error("an idle worker is not routed: Idle must leave it in rotation")
	} else {
		b.release()
	}
	if !isClosed(p.Idle(1)) {
		t.Error("Idle of an idle worker is not closed at once")
	}
}

func TestIdleAndInFlightOfDrainedAndUnknownWorkers(t *testing.T) {
	p := NewPool(UpstreamConfig{})
	p.Add(1, 0, "127.0.0.1:1")
	b, err := acquireNow(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.InFlight(1); n != 1 {
		t.Errorf("InFlight of a busy worker = %d, want 1", n)
	}
	drained := p.Drain(1)
	if n := p.InFlight(1); n != 1 {
		t.Errorf("InFlight of a draining worker = %d, want 1", n)
	}
	idle := p.Idle(1)
	if isClosed(idle) || isClosed(drained) {
		t.Error("Idle or Drain of a draining worker with a request is closed")
	}
	if again := p.Drain(1); again != drained {
		t.Error("a second Drain of a draining worker does not return its channel")
	}
	b.release()
	waitClosed(t, idle, time.Second, "Idle of a drained worker")
	waitClosed(t, drained, time.Second, "Drain")
	if n := p.InFlight(1); n != 0 {
		t.Errorf("InFlight of a drained worker = %d, want 0", n)
	}
	if !isClosed(p.Idle(2)) || p.InFlight(2) != 0 || !isClosed(p.Drain(2)) {
		t.Error("an unknown worker is not idle, drained and without requests")
	}
}

func TestClosedPoolAnswersAtOnce(t *testing.T) {
	p := NewPool(UpstreamConfig{})
	got := make(chan error, 1)
	go func() {
		var tried triedSet
		var deadline time.Time
		_, err := p.acquire(&tried, nil, &deadline, time.Minute)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // most likely waiting for a worker by now; either order must end in ErrNoWorker
	p.Close()
	select {
	case err := <-got:
		if err != ErrNoWorker {
			t.Errorf("request waiting for a worker at Close: %v, want ErrNoWorker", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request waiting for a worker still waits after Close")
	}
	var tried triedSet
	var deadline time.Time
	start := time.Now()
	if _, err := p.acquire(&tried, nil, &deadline, time.Minute); err != ErrNoWorker || time.Since(start) > time.Second {
		t.Errorf("request after Close: %v after %s, want ErrNoWorker at once", err, time.Since(start))
	}
}

func TestClosedPoolFailsTheQueueWithTheLastWorker(t *testing.T) {
	p := newLimitedPool(1, 5, time.Minute, 1, 2)
	var held []*backend
	for i := 0; i < 2; i++ {
		b, err := acquireNow(p)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	got := make(chan error, 1)
	go func() {
		_, err := acquireNow(p)
		got <- err
	}()
	waitFor(t, 5*time.Second, "the request to queue", func() bool { return p.lim.Load().waiting.Load() == 1 })
	p.Close()
	p.Drain(1)
	select {
	case err := <-got:
		t.Fatalf("queued request answered (%v) while a worker that may free a slot is routed", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.Drain(2)
	select {
	case err := <-got:
		if err != ErrNoWorker {
			t.Errorf("queued request when the last worker drained: %v, want ErrNoWorker", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a queued request still waits when no worker is left")
	}
	for _, b := range held {
		b.release()
	}
}
