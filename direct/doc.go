// Package direct owns the public listening sockets of percore's direct
// mode: one SO_REUSEPORT socket per worker slot, all bound to the public
// address. The kernel spreads new connections evenly over the sockets of the
// group; each slot's worker inherits its slot's socket and accepts on it.
// Because percore keeps every socket open for the life of its slot, the
// connections queued on a slot whose worker crashed or is being replaced stay
// queued until the next worker of the slot accepts them.
//
// It is not a proxy and never accepts a connection: percore puts no hop
// between a client and a worker in direct mode. It knows nothing of workers
// either; the supervisor asks for a slot's socket through its own interface.
package direct
