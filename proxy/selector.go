package proxy

import "sync"

// A selector chooses the worker for one request among the routed ones, as
// Caddy's selection policies do. The pool around it owns what is common to
// every policy: the snapshot of workers, ejection, the per-worker limit and
// the slot's acquisition, retrying when a chosen worker filled up meanwhile.
// A policy is one type with a pick method and a test; pick runs on every
// request, so it must not allocate, and it must be safe for concurrent use.
//
// Arguments and results are values, not pointers: an interface call makes
// the compiler move whatever it is pointed to onto the heap.
type selector interface {
	// pick chooses a worker of c that c.usable accepts, or none. r says
	// what the request is pinned to (zero for most requests).
	pick(c candidates, r route) choice
}

// choice is a selector's answer.
type choice struct {
	b       *backend   // the worker; nil: none can take the request
	full    bool       // some worker was skipped only for being at its limit
	outcome pinOutcome // what became of the request's pin
}

// candidates are the workers one pick chooses from.
type candidates struct {
	list  []*backend // the routed workers, in the order they were added
	start int        // where a rotation starts, so that ties take turns
	tried triedSet   // workers the request already failed on
	now   int64      // the ejection clock (ejectionClock)
	full  bool       // set by usable when it skips a worker at its limit
}

// usable reports whether b may take the request now: not tried already,
// not ejected, and with a free request slot. Skipping a worker at its limit
// is noted in c.full: the request then queues rather than failing.
func (c *candidates) usable(b *backend) bool {
	if c.tried.has(b.key) || b.ejected(c.now) {
		return false
	}
	if b.atLimit() {
		c.full = true
		return false
	}
	return true
}

// spare returns an ejected worker the request was not tried on, for when
// every other worker is out too: an ejection is a guess, and an answer from
// a doubtful worker beats a 503. A down worker is no guess: nothing listens
// at its address, and the request had better wait for its replacement.
func (c *candidates) spare() *backend {
	var spare *backend
	for _, b := range c.list {
		if !c.tried.has(b.key) && b.ejected(c.now) && !b.down(c.now) {
			spare = b
		}
	}
	return spare
}

// leastOutstanding picks the usable worker with the fewest requests in
// flight (Caddy's least_conn, Envoy's least request with all choices). Ties
// go to the next worker in turn, so idle workers share light traffic.
type leastOutstanding struct{}

func (leastOutstanding) pick(c candidates, _ route) choice {
	n := len(c.list)
	var best *backend
	var bestLoad int64
	for i := 0; i < n; i++ {
		b := c.list[(c.start+i)%n]
		if !c.usable(b) {
			continue
		}
		if load := b.inflight.Load(); best == nil || load < bestLoad {
			best, bestLoad = b, load
		}
	}
	return choice{b: best, full: c.full}
}

// policy is how a pool chooses workers: the selector, and what the
// handler reads from a request to pin it.
type policy struct {
	balance    selector // for requests pinned to nothing
	sticky     selector // for pinned ones: affinity over balance
	affinity   Affinity
	enginePath string    // engine.io's path prefix; "": sessions are not followed
	sessions   *sessions // engine.io sessions and the workers that opened them
	cookieBufs sync.Pool // *[]byte: scratch for takeSlotCookie
}

func newPolicy(a Affinity, enginePath string) *policy {
	return &policy{balance: leastOutstanding{}, sticky: sticky{next: leastOutstanding{}}, affinity: a, enginePath: enginePath,
		sessions: newSessions(DefaultMaxSessions, DefaultSessionIdle)}
}
