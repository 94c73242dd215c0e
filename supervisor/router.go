package supervisor

// Router is the traffic side as the supervisor sees it. The proxy's pool
// implements it; the supervisor never imports the proxy.
//
// Keys are unique for the life of the supervisor: a replacement worker in the
// same slot gets a new key, so an old and a new worker can be routed at once.
type Router interface {
	// Add makes a ready worker, listening on addr, eligible for new requests.
	Add(key uint64, slot int, addr string)
	// Drain stops sending new requests and tunnels to the worker and returns a
	// channel that is closed when its in-flight requests, streamed bodies and
	// upgraded connections are all done. The worker is then forgotten. Drain
	// of an unknown key returns a closed channel.
	Drain(key uint64) <-chan struct{}
}
