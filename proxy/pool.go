package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// backend is one worker as the proxy sees it.
type backend struct {
	key    uint64
	slot   int
	addr   string
	client *fasthttp.HostClient

	inflight atomic.Int64  // requests, streamed bodies and tunnels not yet done
	requests atomic.Uint64 // requests sent to it
	draining atomic.Bool

	drainOnce sync.Once
	drained   chan struct{}
}

// tryAcquire counts a request on b unless b is draining.
func (b *backend) tryAcquire() bool {
	b.inflight.Add(1)
	if b.draining.Load() {
		b.release()
		return false
	}
	return true
}

// release ends one unit of in-flight work on b.
func (b *backend) release() {
	if b.inflight.Add(-1) == 0 && b.draining.Load() {
		b.finishDrain()
	}
}

// finishDrain closes drained and the worker's idle upstream connections, so
// the worker sees its keep-alive sockets go.
func (b *backend) finishDrain() {
	b.drainOnce.Do(func() {
		close(b.drained)
		b.client.CloseIdleConnections()
	})
}

// Pool holds the workers that take traffic and picks one per request. It
// implements the supervisor's Router. It is safe for concurrent use.
type Pool struct {
	newClient func(addr string) *fasthttp.HostClient

	backends atomic.Pointer[[]*backend] // immutable snapshot, replaced on change
	next     atomic.Uint64              // rotates the start of each pick

	mu      sync.Mutex    // serialises changes of backends and changed
	changed chan struct{} // closed when a worker is added
}

// NewPool returns an empty Pool whose upstream connections use cfg.
func NewPool(cfg UpstreamConfig) *Pool {
	cfg.setDefaults()
	p := &Pool{changed: make(chan struct{})}
	p.newClient = cfg.newClient
	empty := []*backend{}
	p.backends.Store(&empty)
	return p
}

// Add implements the supervisor's Router: the worker at addr takes requests
// from now on.
func (p *Pool) Add(key uint64, slot int, addr string) {
	b := &backend{key: key, slot: slot, addr: addr, client: p.newClient(addr), drained: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.backends.Load()
	next := make([]*backend, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, b)
	p.backends.Store(&next)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Drain implements the supervisor's Router: no new request goes to the
// worker, and the returned channel closes when its in-flight work is done.
func (p *Pool) Drain(key uint64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.backends.Load()
	next := make([]*backend, 0, len(old))
	var gone *backend
	for _, b := range old {
		if b.key == key {
			gone = b
			continue
		}
		next = append(next, b)
	}
	if gone == nil {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	p.backends.Store(&next)
	gone.draining.Store(true)
	if gone.inflight.Load() == 0 {
		gone.finishDrain()
	}
	return gone.drained
}

// pick returns the ready worker with the fewest requests in flight, skipping
// those in tried, with in-flight already counted; nil when none is left.
// Ties go to the next worker in turn, so idle workers share light traffic.
func (p *Pool) pick(tried *triedSet) *backend {
	for {
		list := *p.backends.Load()
		n := len(list)
		if n == 0 {
			return nil
		}
		start := int(p.next.Add(1) % uint64(n))
		var best *backend
		var bestLoad int64
		for i := 0; i < n; i++ {
			b := list[(start+i)%n]
			if tried.has(b.key) {
				continue
			}
			if load := b.inflight.Load(); best == nil || load < bestLoad {
				best, bestLoad = b, load
			}
		}
		if best == nil {
			return nil
		}
		if best.tryAcquire() {
			return best
		}
	}
}

// waitForWorker picks a worker, waiting up to the deadline for one to be
// added when none is available.
func (p *Pool) waitForWorker(tried *triedSet, deadline time.Time) *backend {
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if b := p.pick(tried); b != nil {
			return b
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			return nil
		}
	}
}

// Ready reports how many workers take traffic now.
func (p *Pool) Ready() int { return len(*p.backends.Load()) }

// triedSet remembers the workers a request already failed on. It is small
// and lives on the stack: a request is tried on a handful of workers at most.
type triedSet struct {
	keys [maxAttempts]uint64
	n    int
}

func (t *triedSet) has(key uint64) bool {
	for i := 0; i < t.n; i++ {
		if t.keys[i] == key {
			return true
		}
	}
	return false
}

func (t *triedSet) add(key uint64) {
	if t.n < len(t.keys) {
		t.keys[t.n] = key
		t.n++
	}
}
