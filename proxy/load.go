package proxy

// Load is how busy the pool's workers are at one moment, for an autoscaler's
// figures. Reading it costs a pass over the routed workers' counters; the
// request path does nothing for it.
type Load struct {
	// Ready is the workers in rotation: routed, not draining, not ejected.
	Ready int
	// Busy is those of them with a request in flight, its streamed body
	// included. An open tunnel (a WebSocket) does not make a worker busy:
	// it holds no request slot, and a worker serves many.
	Busy int
	// Inflight is the requests in flight on the ready workers, counted as
	// Busy counts them.
	Inflight int64
	// Queued is the requests waiting for a worker at its --max-inflight
	// limit; 0 without a limit.
	Queued int64
}

// Load returns the pool's load now. It is safe for concurrent use.
func (p *Pool) Load() Load {
	now := p.ejectionClock()
	var l Load
	for _, b := range *p.backends.Load() {
		if b.ejected(now) {
			continue
		}
		l.Ready++
		// Tunnels first: one that ends between the two reads then makes
		// the difference smaller, never a false busy.
		tunnels := b.tunnels.Load()
		if n := b.inflight.Load() - tunnels; n > 0 {
			l.Busy++
			l.Inflight += n
		}
	}
	l.Queued = p.Queued()
	return l
}
