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
	lim    *limit // nil without a per-worker limit; fixed when the worker is added

	inflight atomic.Int64  // requests, streamed bodies and tunnels not yet done
	tunnels  atomic.Int64  // of inflight, the open tunnels
	busy     atomic.Int64  // requests held against lim; an open tunnel gives its slot back
	requests atomic.Uint64 // requests sent to it
	draining atomic.Bool

	stats        *slotStats   // the slot's answer counters
	maxRequests  uint64       // recycle after this many requests; 0: never
	fails        atomic.Int32 // proxy failures in a row
	ejections    atomic.Int32 // times ejected so far
	ejectedUntil atomic.Int64 // unix nanoseconds; out of rotation until then
	downUntil    atomic.Int64 // unix nanoseconds; its address refused a connection: down until then

	drainOnce sync.Once
	drained   chan struct{}

	idleMu   sync.Mutex    // protects idleCh
	idleCh   chan struct{} // closed once b is seen idle; nil while nobody waits for that
	idleWait atomic.Bool   // idleCh is set: the ends of requests and slots look for idleness
}

// tryAcquire counts a request on b unless b is draining or at its limit.
func (b *backend) tryAcquire() bool {
	if b.lim != nil && !b.takeSlot() {
		return false
	}
	return b.enter()
}

// enter counts a request whose slot is already taken, unless b is draining;
// then the slot is given back.
func (b *backend) enter() bool {
	b.inflight.Add(1)
	if b.draining.Load() {
		b.release()
		return false
	}
	return true
}

// takeSlot takes one of b's request slots if one is free.
func (b *backend) takeSlot() bool {
	for {
		n := b.busy.Load()
		if n >= b.lim.max {
			return false
		}
		if b.busy.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// atLimit reports whether every request slot of b is taken.
func (b *backend) atLimit() bool {
	return b.lim != nil && b.busy.Load() >= b.lim.max
}

// release ends a request on b: its slot goes to the oldest queued request,
// or is freed, and its in-flight count ends.
func (b *backend) release() {
	b.freeSlot()
	b.done()
}

// freeSlot gives up the request slot of a request that ends or becomes a
// tunnel. A draining worker's slot is not handed on.
func (b *backend) freeSlot() {
	if b.lim == nil {
		return
	}
	if b.draining.Load() || !b.lim.handoff(b) {
		if b.busy.Add(-1) == 0 {
			b.noteIdle()
		}
	}
}

// done ends one unit of in-flight work on b.
func (b *backend) done() {
	if b.inflight.Add(-1) == 0 {
		if b.draining.Load() {
			b.finishDrain()
		}
		b.noteIdle()
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
	cfg UpstreamConfig

	backends atomic.Pointer[[]*backend] // immutable snapshot, replaced on change
	policy   atomic.Pointer[policy]     // how a worker is chosen; set before traffic
	next     atomic.Uint64              // rotates the start of each pick
	lim      atomic.Pointer[limit]      // per-worker limit; nil when off

	mu          sync.Mutex          // serialises changes of backends, changed, draining and the settings below
	changed     chan struct{}       // closed when a worker is added, and when the pool closes
	draining    map[uint64]*backend // drained workers whose work may still be in flight
	closed      atomic.Bool         // percore stops: no worker will be added
	respTimeout time.Duration       // for the upstream clients of workers added from now on
	maxRequests int                 // recycle workers after this many requests (0: never)
	jitter      int                 // plus up to this many
	onLimit     func(key uint64)
	onEject     func(key uint64, until time.Time)

	stats        *stats
	ejectedUntil atomic.Int64 // the latest end of an ejection; 0 when none may be on
}

// NewPool returns an empty Pool whose upstream connections use cfg.
func NewPool(cfg UpstreamConfig) *Pool {
	cfg.setDefaults()
	p := &Pool{cfg: cfg, changed: make(chan struct{}), draining: map[uint64]*backend{}, stats: newStats()}
	empty := []*backend{}
	p.backends.Store(&empty)
	p.policy.Store(newPolicy(Affinity{}, DefaultEnginePath))
	return p
}

// configure sets the policy, and the per-worker limit (nil for none) and
// the upstream response-header timeout (0 for none) of the workers added
// from now on.
func (p *Pool) configure(lim *limit, responseTimeout time.Duration, pol *policy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy.Store(pol)
	p.lim.Store(lim)
	p.respTimeout = responseTimeout
}

// Add implements the supervisor's Router: the worker at addr takes requests
// from now on. Queued requests take its free slots at once.
func (p *Pool) Add(key uint64, slot int, addr string) {
	p.mu.Lock()
	b := &backend{key: key, slot: slot, addr: addr, client: p.cfg.newClient(addr, slot, p.respTimeout),
		lim: p.lim.Load(), drained: make(chan struct{}), stats: p.stats.forSlot(slot),
		maxRequests: requestLimit(p.maxRequests, p.jitter)}
	old := *p.backends.Load()
	next := make([]*backend, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, b)
	p.backends.Store(&next)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if b.lim == nil {
		return
	}
	for b.lim.waiting.Load() > 0 && b.takeSlot() {
		if !b.lim.handoff(b) {
			b.busy.Add(-1)
			break
		}
	}
}

// Drain implements the supervisor's Router: no new request goes to the
// worker, and the returned channel closes when its in-flight work is done.
// Once the pool is closed, draining the last worker answers the queued
// requests with 503.
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
	p.pruneDrainingLocked()
	if gone == nil {
		if d := p.draining[key]; d != nil {
			return d.drained
		}
		return closedChan()
	}
	p.backends.Store(&next)
	p.policy.Load().sessions.forget(key)
	gone.draining.Store(true)
	if gone.inflight.Load() == 0 {
		gone.finishDrain()
	} else {
		p.draining[key] = gone
	}
	if len(next) == 0 && p.closed.Load() {
		p.failQueueLocked()
	}
	return gone.drained
}

// pick returns the ready worker with the fewest requests in flight, skipping
// those in tried and those at their limit, with the request already counted;
// nil when none is left. Ties go to the next worker in turn, so idle workers
// share light traffic.
func (p *Pool) pick(tried *triedSet) *backend {
	b, _ := p.choose(tried, nil)
	return b
}

// choose is pick that also says, when it finds no worker, whether some were
// only at their limit, or requests already queue for one: the request must
// then queue too.
func (p *Pool) choose(tried *triedSet, r *route) (b *backend, full bool) {
	if l := p.lim.Load(); l != nil && l.waiting.Load() > 0 {
		return nil, true // no overtaking the queue
	}
	return p.pickFree(tried, r)
}

// pickFree is choose without regard to the queue. The pool's selector
// chooses; pickFree takes the chosen worker's slot, and chooses again when
// the worker filled up or started draining meanwhile.
func (p *Pool) pickFree(tried *triedSet, r *route) (*backend, bool) {
	pol := p.policy.Load()
	for {
		list := *p.backends.Load()
		n := len(list)
		if n == 0 {
			return nil, false
		}
		c := candidates{list: list, start: int(p.next.Add(1) % uint64(n)), tried: *tried, now: p.ejectionClock()}
		var ch choice
		if r != nil && r.pinned() {
			ch = pol.sticky.pick(c, *r)
		} else {
			ch = pol.balance.pick(c, route{})
		}
		if ch.b == nil && !ch.full {
			ch.b = c.spare()
		}
		if ch.b == nil {
			return nil, ch.full
		}
		if ch.b.tryAcquire() {
			if r != nil {
				r.outcome = ch.outcome
				p.stats.pinned(ch.outcome)
			}
			return ch.b, false
		}
	}
}

// acquire returns a worker for a request tied to workers by r (nil: to
// none), with the request counted. When no
// worker is ready it waits until *deadline, which it sets to wait from now
// the first time it is needed (so retries of a request share it); when every
// worker is at its limit the request queues. The error is one of
// ErrNoWorker, ErrQueueFull and ErrQueueTimeout.
func (p *Pool) acquire(tried *triedSet, r *route, deadline *time.Time, wait time.Duration) (*backend, error) {
	if b, full := p.choose(tried, r); b != nil {
		return b, nil
	} else if full {
		return p.await(tried, r)
	}
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		b, full := p.choose(tried, r)
		if b != nil {
			return b, nil
		}
		if full {
			return p.await(tried, r)
		}
		if p.closed.Load() {
			return nil, ErrNoWorker // percore stops: no worker will come
		}
		if p.stillRouted(tried) {
			// A retry whose every worker is still in rotation and
			// listening: they answered, badly, or closed the connection
			// while alive. Waiting would only delay the 502.
			return nil, ErrNoWorker
		}
		if deadline.IsZero() {
			*deadline = time.Now().Add(wait)
		}
		d := time.Until(*deadline)
		if d <= 0 {
			return nil, ErrNoWorker
		}
		t := time.NewTimer(d)
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			return nil, ErrNoWorker
		}
	}
}

// stillRouted reports whether a request was tried on some workers and all
// of them are still routed. A tried worker that left the pool, or is down
// (its address refuses connections: it died, and the supervisor has not
// seen it yet), makes a wait for its replacement worth it.
func (p *Pool) stillRouted(tried *triedSet) bool {
	if tried.n == 0 {
		return false
	}
	list := *p.backends.Load()
	now := time.Now().UnixNano()
	for i := 0; i < tried.n; i++ {
		found := false
		for _, b := range list {
			if b.key == tried.keys[i] {
				found = !b.down(now)
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// await queues a request until a worker slot is handed to it or the queue
// timeout ends.
func (p *Pool) await(tried *triedSet, r *route) (*backend, error) {
	l := p.lim.Load()
	deadline := time.Now().Add(l.timeout)
	for {
		w := l.enqueue()
		if w == nil {
			return nil, ErrQueueFull
		}
		// A slot freed between the caller's pick and enqueue found nobody
		// queued, so nobody was handed it: look once more.
		if b, _ := p.pickFree(tried, r); b != nil {
			if !l.leave(w) {
				(<-w.slot).freeSlot()
			}
			return b, nil
		}
		// The last worker drained before the request queued: the queue was
		// failed already.
		if p.closed.Load() && len(*p.backends.Load()) == 0 && l.leave(w) {
			return nil, ErrNoWorker
		}
		b := waitSlot(l, w, deadline)
		if b == nil && p.closed.Load() {
			return nil, ErrNoWorker // percore stops, and no worker is left to free a slot
		}
		if b == nil {
			return nil, ErrQueueTimeout
		}
		if b.enter() {
			return b, nil
		}
		// b started draining after handing its slot over: queue again.
	}
}

// waitSlot waits for a slot handed to w until deadline; nil when none came.
func waitSlot(l *limit, w *waiter, deadline time.Time) *backend {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case b := <-w.slot:
		return b
	case <-t.C:
		if l.leave(w) {
			return nil
		}
		return <-w.slot
	}
}

// Ready reports how many workers take traffic now; a worker ejected for
// failing requests, or down (its address refuses connections), does not
// count.
func (p *Pool) Ready() int {
	list := *p.backends.Load()
	now := p.ejectionClock()
	n := 0
	for _, b := range list {
		if !b.ejected(now) {
			n++
		}
	}
	return n
}

// SetMaxRequests makes workers added from now on recycle after n requests,
// plus up to jitter more, by calling onLimit with their key once.
func (p *Pool) SetMaxRequests(n, jitter int, onLimit func(key uint64)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxRequests, p.jitter, p.onLimit = n, jitter, onLimit
}

// OnEject makes the pool tell fn each time it takes a worker out of
// rotation for failed requests, or because its address refused a
// connection (see DownFor), with the worker's key and the ejection's end,
// so that whoever reports readiness sees what the pool routes at once.
func (p *Pool) OnEject(fn func(key uint64, until time.Time)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onEject = fn
}

// ejected tells the OnEject function about b's ejection until until.
func (p *Pool) ejected(b *backend, until int64) {
	p.mu.Lock()
	fn := p.onEject
	p.mu.Unlock()
	if fn != nil {
		fn(b.key, time.Unix(0, until))
	}
}

// AtLimit reports whether the worker with key has every request slot taken
// under the per-worker in-flight limit, so that new requests queue.
func (p *Pool) AtLimit(key uint64) bool {
	for _, b := range *p.backends.Load() {
		if b.key == key {
			return b.atLimit()
		}
	}
	return false
}

// counted notes one more request sent to b, and asks for b's recycling when
// it reaches its request limit.
func (p *Pool) counted(b *backend) {
	if n := b.requests.Add(1); n == b.maxRequests && b.maxRequests != 0 {
		p.mu.Lock()
		onLimit := p.onLimit
		p.mu.Unlock()
		if onLimit != nil {
			onLimit(b.key)
		}
	}
}

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
