package proxy

// This file holds what the pool does for a stop of percore: it tells when
// a worker is idle, how much work a worker still has, and, once closed,
// answers at once the requests no worker is left for.

// closedChan returns a closed channel.
func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// idle returns a channel that is closed once b has no work in flight and
// holds no request slot (a slot handed to a queued request counts as
// held).
func (b *backend) idle() <-chan struct{} {
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	if b.idleCh == nil {
		b.idleCh = make(chan struct{})
		b.idleWait.Store(true)
	}
	ch := b.idleCh
	b.checkIdleLocked()
	return ch
}

// noteIdle closes the idle channel, if someone waits for it and b is idle
// now. It is called whenever b's in-flight count or its busy slots reach
// zero, so it costs one atomic load when nobody waits.
func (b *backend) noteIdle() {
	if !b.idleWait.Load() {
		return
	}
	b.idleMu.Lock()
	defer b.idleMu.Unlock()
	b.checkIdleLocked()
}

func (b *backend) checkIdleLocked() {
	if b.idleCh == nil || b.inflight.Load() != 0 || (b.lim != nil && b.busy.Load() != 0) {
		return
	}
	close(b.idleCh)
	b.idleCh = nil
	b.idleWait.Store(false)
}

// Idle implements the supervisor's Router: the returned channel is closed
// once the worker has no request, streamed body or tunnel in flight and no
// request slot of it is held or handed to a queued request. The worker
// stays routed meanwhile, so that a request that still arrives, or waits in
// the queue, is served rather than refused; a request may thus start on it
// after the channel closed, which Drain then waits for. Idle of a worker
// already drained returns its Drain channel, and of an unknown one a closed
// channel.
func (p *Pool) Idle(key uint64) <-chan struct{} {
	for _, b := range *p.backends.Load() {
		if b.key == key {
			return b.idle()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.draining[key]; d != nil {
		return d.drained
	}
	return closedChan()
}

// InFlight implements the supervisor's Router: the requests, streamed
// bodies and tunnels that hold the worker now, routed or draining. After
// Serve's Stop began, open tunnels no longer hold their workers and are
// not counted.
func (p *Pool) InFlight(key uint64) int {
	for _, b := range *p.backends.Load() {
		if b.key == key {
			return int(b.inflight.Load())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.draining[key]; d != nil {
		return int(d.inflight.Load())
	}
	return 0
}

// Close tells the pool that percore stops and no worker will be added. A
// request that finds no routed worker gets 503 at once instead of waiting
// for one, and so do the queued requests once the last worker is drained.
// Workers already routed keep serving until they are drained.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	close(p.changed) // wakes the requests waiting for a worker
	p.changed = make(chan struct{})
	if len(*p.backends.Load()) == 0 {
		p.failQueueLocked()
	}
}

// failQueueLocked answers every queued request: no slot will be handed to
// it.
func (p *Pool) failQueueLocked() {
	if l := p.lim.Load(); l != nil {
		l.failAll()
	}
}

// pruneDrainingLocked forgets the drained workers whose work is done.
func (p *Pool) pruneDrainingLocked() {
	for key, b := range p.draining {
		select {
		case <-b.drained:
			delete(p.draining, key)
		default:
		}
	}
}

// failAll empties the queue; each waiter gets nil instead of a worker.
func (l *limit) failAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queue) > 0 {
		w := l.queue[0]
		l.removeLocked(0)
		w.slot <- nil // buffered and sent once: never blocks
	}
}
