package proxy

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newLimitedPool(max int64, queue int, timeout time.Duration, keys ...uint64) *Pool {
	p := NewPool(UpstreamConfig{})
	p.configure(&limit{max: max, size: queue, timeout: timeout}, 0, newPolicy(Affinity{}, DefaultEnginePath))
	for _, k := range keys {
		p.Add(k, int(k), "127.0.0.1:1")
	}
	return p
}

// acquireNow acquires for a request without waiting for workers.
func acquireNow(p *Pool) (*backend, error) {
	var tried triedSet
	var deadline time.Time
	return p.acquire(&tried, nil, &deadline, time.Millisecond)
}

func TestLimitCapsEachWorker(t *testing.T) {
	p := newLimitedPool(2, 0, time.Second, 1, 2)
	held := map[uint64]int{}
	for i := 0; i < 4; i++ {
		b, err := acquireNow(p)
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		held[b.key]++
	}
	if held[1] != 2 || held[2] != 2 {
		t.Errorf("4 requests on 2 workers of 2 slots went %v", held)
	}
	var none triedSet
	if b, full := p.choose(&none, nil); b != nil || !full {
		t.Errorf("choose with every slot taken = %v, %v; want nil, full", b, full)
	}
	if b, err := acquireNow(p); b != nil || err != ErrQueueFull {
		t.Errorf("acquire with no queue = %v, %v; want ErrQueueFull", b, err)
	}
}

func TestQueueServesInArrivalOrder(t *testing.T) {
	p := newLimitedPool(1, 3, 5*time.Second, 1)
	first, err := acquireNow(p)
	if err != nil {
		t.Fatal(err)
	}
	l := p.lim.Load()
	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := acquireNow(p)
			if err != nil {
				t.Errorf("queued request %d: %v", i, err)
				return
			}
			order <- i
			time.Sleep(10 * time.Millisecond)
			b.release()
		}()
		waitFor(t, time.Second, "the request to queue", func() bool { return l.waiting.Load() == int64(i+1) })
	}
	if b, err := acquireNow(p); b != nil || err != ErrQueueFull {
		t.Errorf("fourth waiter = %v, %v; want ErrQueueFull", b, err)
	}
	first.release()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Errorf("queued request %d was served in place %d", got, want)
		}
		want++
	}
	b := (*p.backends.Load())[0]
	if b.busy.Load() != 0 || b.inflight.Load() != 0 || l.waiting.Load() != 0 {
		t.Errorf("after the burst: busy %d, in flight %d, waiting %d", b.busy.Load(), b.inflight.Load(), l.waiting.Load())
	}
}

func TestQueueTimeout(t *testing.T) {
	p := newLimitedPool(1, 5, 100*time.Millisecond, 1)
	held, _ := acquireNow(p)
	began := time.Now()
	b, err := acquireNow(p)
	if b != nil || err != ErrQueueTimeout {
		t.Fatalf("acquire = %v, %v; want ErrQueueTimeout", b, err)
	}
	if d := time.Since(began); d < 90*time.Millisecond || d > time.Second {
		t.Errorf("gave up after %s, want 100ms", d)
	}
	if n := p.lim.Load().waiting.Load(); n != 0 {
		t.Errorf("%d still queued after the timeout", n)
	}
	held.release()
	if b, err := acquireNow(p); err != nil {
		t.Errorf("after the release: %v", err)
	} else {
		b.release()
	}
}

func TestAddedWorkerTakesQueuedRequests(t *testing.T) {
	p := newLimitedPool(1, 5, 5*time.Second, 1)
	held, _ := acquireNow(p)
	got := make(chan *backend, 2)
	for i := 0; i < 2; i++ {
		go func() {
			b, err := acquireNow(p)
			if err != nil {
				t.Error(err)
			}
			got <- b
		}()
	}
	waitFor(t, time.Second, "two queued", func() bool { return p.lim.Load().waiting.Load() == 2 })
	p.Add(2, 2, "127.0.0.1:1")
	select {
	case b := <-got:
		if b == nil || b.key != 2 {
			t.Fatalf("queued request got %v, want the new worker", b)
		}
		b.release()
	case <-time.After(time.Second):
		t.Fatal("the new worker's slot did not reach the queue")
	}
	// The release above handed the slot to the other waiter.
	select {
	case b := <-got:
		if b == nil || b.key != 2 {
			t.Fatalf("second queued request got %v, want worker 2", b)
		}
		b.release()
	case <-time.After(time.Second):
		t.Fatal("a freed slot was not handed on")
	}
	held.release()
}

func TestDrainingWorkerSlotIsNotHandedOn(t *testing.T) {
	p := newLimitedPool(1, 5, 300*time.Millisecond, 1)
	held, _ := acquireNow(p)
	res := make(chan error, 1)
	go func() {
		b, err := acquireNow(p)
		if b != nil {
			b.release()
		}
		res <- err
	}()
	waitFor(t, time.Second, "one queued", func() bool { return p.lim.Load().waiting.Load() == 1 })
	drained := p.Drain(1)
	held.release()
	if err := <-res; err != ErrQueueTimeout {
		t.Errorf("waiter got %v, want ErrQueueTimeout: a draining worker takes no request", err)
	}
	select {
	case <-drained:
	case <-time.After(time.Second):
		t.Error("not drained")
	}
}

func TestLimitHoldsUnderLoad(t *testing.T) {
	const max = 3
	p := newLimitedPool(max, 1000, 10*time.Second, 1, 2, 3)
	var peak [4]atomic.Int64
	var cur [4]atomic.Int64
	var wg sync.WaitGroup
	var served atomic.Int64
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				b, err := acquireNow(p)
				if err != nil {
					t.Error(err)
					return
				}
				n := cur[b.key].Add(1)
				for {
					old := peak[b.key].Load()
					if n <= old || peak[b.key].CompareAndSwap(old, n) {
						break
					}
				}
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
				}
				cur[b.key].Add(-1)
				b.release()
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	if served.Load() != 32*200 {
		t.Errorf("served %d, want %d", served.Load(), 32*200)
	}
	for k := 1; k <= 3; k++ {
		if peak[k].Load() > max {
			t.Errorf("worker %d had %d requests at once, limit %d", k, peak[k].Load(), max)
		}
	}
	for _, b := range *p.backends.Load() {
		if b.busy.Load() != 0 || b.inflight.Load() != 0 {
			t.Errorf("worker %d left busy %d, in flight %d", b.key, b.busy.Load(), b.inflight.Load())
		}
	}
	if n := p.lim.Load().waiting.Load(); n != 0 {
		t.Errorf("%d left queued", n)
	}
}

func TestNoLimitPicksWithoutQueue(t *testing.T) {
	p := newTestPool(1)
	for i := 0; i < 100; i++ {
		if _, err := acquireNow(p); err != nil {
			t.Fatalf("acquire %d without a limit: %v", i, err)
		}
	}
	if got := (*p.backends.Load())[0].busy.Load(); got != 0 {
		t.Errorf("busy counted without a limit: %d", got)
	}
}
