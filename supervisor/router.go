package supervisor

// Router is the traffic side as the supervisor sees it. The proxy's pool
// implements it; the supervisor never imports the proxy.
//
// Keys are unique for the life of the supervisor: a replacement worker in the
// same slot gets a new key, so an old and a new worker can be routed at once.
type Router interface {
	// Add makes a ready worker, listening on addr, eligible for new requests.
	Add(key uint64, slot int, addr string)
	// Idle returns a channel that is closed once the worker has no request,
	// streamed body or upgraded connection in flight and no request waits
	// for it. The worker stays routed: a stop of the supervisor waits for
	// Idle before it drains a worker, so that requests that still arrive,
	// or wait in a queue, are served. Idle of a drained worker returns its
	// Drain channel, and of an unknown key a closed channel.
	Idle(key uint64) <-chan struct{}
	// Drain stops sending new requests and tunnels to the worker and returns a
	// channel that is closed when its in-flight requests, streamed bodies and
	// upgraded connections are all done. The worker is then forgotten. Drain
	// of an unknown key returns a closed channel.
	Drain(key uint64) <-chan struct{}
	// InFlight returns how many requests, streamed bodies and upgraded
	// connections hold the worker now, routed or draining: what a stop cuts
	// when it kills the worker. It returns 0 for an unknown key.
	InFlight(key uint64) int
}
