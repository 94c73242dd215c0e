package proxy

import (
	"testing"
	"time"
)

func newTestPool(keys ...uint64) *Pool {
	p := NewPool(UpstreamConfig{})
	for _, k := range keys {
		p.Add(k, int(k), "127.0.0.1:1")
	}
	return p
}

func TestPickPrefersLeastInFlight(t *testing.T) {
	p := newTestPool(1, 2, 3)
	var none triedSet
	held := map[uint64]int{}
	// Nine picks without release spread 3/3/3.
	for i := 0; i < 9; i++ {
		b := p.pick(&none)
		held[b.key]++
	}
	for k, n := range held {
		if n != 3 {
			t.Errorf("worker %d got %d of 9 concurrent requests, want 3 (%v)", k, n, held)
		}
	}
}

func TestPickAvoidsBusyWorker(t *testing.T) {
	p := newTestPool(1, 2)
	var none triedSet
	busy := p.pick(&none)
	for i := 0; i < 10; i++ {
		b := p.pick(&none)
		if b == busy {
			t.Fatalf("pick %d chose the busy worker %d while the other was idle", i, b.key)
		}
		b.release()
	}
}

func TestPickRotatesAmongIdleWorkers(t *testing.T) {
	p := newTestPool(1, 2, 3)
	var none triedSet
	seen := map[uint64]int{}
	for i := 0; i < 30; i++ {
		b := p.pick(&none)
		seen[b.key]++
		b.release()
	}
	if len(seen) != 3 {
		t.Errorf("sequential requests went to %v, want all 3 workers", seen)
	}
}

func TestPickSkipsTried(t *testing.T) {
	p := newTestPool(1, 2)
	var tried triedSet
	tried.add(1)
	for i := 0; i < 5; i++ {
		b := p.pick(&tried)
		if b == nil || b.key != 2 {
			t.Fatalf("pick = %v, want worker 2", b)
		}
		b.release()
	}
	tried.add(2)
	if b := p.pick(&tried); b != nil {
		t.Errorf("pick = %d with every worker tried, want nil", b.key)
	}
}

func TestDrainWaitsForInFlight(t *testing.T) {
	p := newTestPool(1)
	var none triedSet
	b := p.pick(&none)
	drained := p.Drain(1)
	if p.Ready() != 0 {
		t.Errorf("Ready = %d after drain, want 0", p.Ready())
	}
	if got := p.pick(&none); got != nil {
		t.Errorf("a draining worker was picked")
	}
	select {
	case <-drained:
		t.Fatal("drained before the in-flight request ended")
	default:
	}
	b.release()
	select {
	case <-drained:
	case <-time.After(time.Second):
		t.Fatal("not drained after the last request ended")
	}
	select {
	case <-p.Drain(42):
	default:
		t.Error("Drain of an unknown key must return a closed channel")
	}
}

func TestAcquireWaitsForAWorker(t *testing.T) {
	p := newTestPool()
	var none triedSet
	go func() {
		time.Sleep(50 * time.Millisecond)
		p.Add(7, 0, "127.0.0.1:1")
	}()
	var deadline time.Time
	b, err := p.acquire(&none, nil, &deadline, 5*time.Second)
	if b == nil || b.key != 7 || err != nil {
		t.Fatalf("acquire = %v, %v; want the added worker", b, err)
	}
	b.release()
	// A retry whose worker is still routed (it answered badly) gives up at
	// once: waiting would only delay the 502.
	tried := triedSet{keys: [maxAttempts]uint64{7}, n: 1}
	deadline = time.Time{}
	start := time.Now()
	if b, err := p.acquire(&tried, nil, &deadline, time.Second); b != nil || err != ErrNoWorker {
		t.Errorf("acquire = %v, %v; want ErrNoWorker", b, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("acquire waited %s for a retry whose worker is still routed", d)
	}
	// A retry whose worker left the pool (it died) waits for a replacement.
	p.Drain(7)
	deadline = time.Time{}
	start = time.Now()
	if b, err := p.acquire(&tried, nil, &deadline, 50*time.Millisecond); b != nil || err != ErrNoWorker {
		t.Errorf("acquire = %v, %v; want ErrNoWorker at the deadline", b, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("acquire gave up after %s, want about 50ms", d)
	}
}
