package supervisor

// State is where a worker is in its life.
type State int

// The states of a worker. A worker moves starting → ready → draining →
// stopped; a worker that exits unexpectedly goes to backoff before its slot
// starts a replacement.
const (
	StateStarting State = iota
	StateReady
	StateDraining
	StateStopped
	StateBackoff
)

// String returns the lower-case name of the state, as shown in logs and /status.
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateDraining:
		return "draining"
	case StateStopped:
		return "stopped"
	case StateBackoff:
		return "backoff"
	default:
		return "unknown"
	}
}
