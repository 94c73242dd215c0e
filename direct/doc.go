// Package direct owns the public listening sockets of percore's direct
// mode: one SO_REUSEPORT socket per worker slot, all bound to the public
// address. The kernel spreads new connections over the sockets of the
// group; each slot's worker inherits its slot's socket and accepts on it.
// percore keeps every socket open for the life of its slot, so the queue of
// a slot whose worker crashed or is being replaced is not lost.
//
// It is not a proxy: a connection goes from the kernel to a worker. Told
// which workers serve, the sockets steer new connections away from a slot
// that has none (a classic BPF program on the SO_REUSEPORT group), and what
// was already queued there percore accepts and passes on, each connection
// itself, over a serving worker's IPC channel (nodeipc), so the app sees
// the client's own address; when no serving worker can take it, it waits
// in the queue for the slot's next worker. A slot whose worker serves but
// does not accept (its queue full or not draining, the worker out of
// descriptors) is steered around the same way until it accepts again
// (accepting.go). A slot scaled away is closed only when its queue is
// empty, so scaling down resets nothing. It knows nothing
// of workers either; the supervisor asks for a slot's socket through its
// own interface.
package direct
