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

// phase is where a slot is in the table of the package doc. Several phases
// show as one State: a slot replacing its worker is ready, since its old
// worker still serves, and so is a slot whose replacement is on probation.
type phase int

// The phases of a slot; see the package doc for the events that move it.
const (
	phaseStarting  phase = iota // a worker starts; none serves
	phaseReady                  // the worker serves
	phaseReplacing              // the worker serves while its replacement starts
	phaseProbation              // the worker and its ready replacement serve until the probation is over
	phaseEjecting               // the worker was taken out and is stopped or killed; a restart follows
	phaseRecycling              // the worker drains and stops; its replacement starts when it is gone
	phaseStopping               // the worker drains and stops; the slot ends
	phaseBackoff                // no worker; the next start waits
	phaseStopped                // the slot has ended
	phaseCount
)

// String returns the phase's name as the package doc's table writes it.
func (p phase) String() string {
	switch p {
	case phaseStarting:
		return "starting"
	case phaseReady:
		return "ready"
	case phaseReplacing:
		return "replacing"
	case phaseProbation:
		return "probation"
	case phaseEjecting:
		return "ejecting"
	case phaseRecycling:
		return "recycling"
	case phaseStopping:
		return "stopping"
	case phaseBackoff:
		return "backoff"
	case phaseStopped:
		return "stopped"
	default:
		return "unknown"
	}
}

// State is the phase as /status shows it.
func (p phase) State() State {
	switch p {
	case phaseStarting:
		return StateStarting
	case phaseReady, phaseReplacing, phaseProbation:
		return StateReady
	case phaseEjecting, phaseRecycling, phaseStopping:
		return StateDraining
	case phaseBackoff:
		return StateBackoff
	default:
		return StateStopped
	}
}

// NotRouted is why a slot's worker takes no new requests; "" when it does.
type NotRouted string

// The reasons a slot's worker is not routed. The supervisor knows all but
// NotRoutedFull, which the proxy's side adds for a worker at its in-flight
// limit, and NotRoutedNotAccepting, which direct mode's sockets add for a
// worker that serves but does not accept on its public socket.
const (
	NotRoutedStarting NotRouted = "starting" // no worker has become ready yet
	NotRoutedEjected  NotRouted = "ejected"  // taken out after failed checks or requests, or killed
	NotRoutedDraining NotRouted = "draining" // stopping, for a replacement or for good
	NotRoutedBackoff  NotRouted = "backoff"  // waiting to restart
	NotRoutedStopped  NotRouted = "stopped"  // the slot has ended
	NotRoutedFull     NotRouted = "full"     // at the proxy's in-flight limit

	NotRoutedNotAccepting NotRouted = "not accepting" // its public socket's queue or its descriptors say it does not accept
)
