package supervisor

import (
	"sync"
	"time"
)

// eventKind is what happened to a slot or its worker. The package doc's
// table names each one.
type eventKind int

const (
	evReady         eventKind = iota // the starting worker listens
	evNotReady                       // the starting worker did not listen in time
	evShortage                       // the starting worker could not be checked: percore is short of descriptors or memory
	evStartFailed                    // no process could be started
	evExit                           // a worker's process ended
	evEject                          // the health checker takes the serving worker out
	evKill                           // the memory guard kills a worker above its hard limit
	evRecycle                        // the serving worker should be replaced (memory budget, request count)
	evReplace                        // the replacer asks for a replacement (reload, recycle)
	evRemove                         // the slot is scaled away
	evStop                           // the supervisor stops
	evBackoffOver                    // the restart delay has passed
	evSample                         // the sampler measured the worker's memory
	evHealth                         // the health checker counted failed checks
	evOutOfRotation                  // the proxy took the worker out after failed requests
	evProbationOver                  // the replacement has served beside the old worker for Config.Probation
	eventCount
)

// String returns the event's name as the package doc's table writes it.
func (k eventKind) String() string {
	switch k {
	case evReady:
		return "ready"
	case evNotReady:
		return "not ready"
	case evShortage:
		return "shortage"
	case evStartFailed:
		return "start failed"
	case evExit:
		return "exit"
	case evEject:
		return "eject"
	case evKill:
		return "kill"
	case evRecycle:
		return "recycle"
	case evReplace:
		return "replace"
	case evRemove:
		return "remove"
	case evStop:
		return "stop"
	case evBackoffOver:
		return "backoff over"
	case evSample:
		return "sample"
	case evHealth:
		return "health"
	case evOutOfRotation:
		return "out of rotation"
	case evProbationOver:
		return "probation over"
	default:
		return "unknown"
	}
}

// event is one message to a slot's loop. key names the worker it is about;
// an event about a worker that is no longer the slot's is ignored.
type event struct {
	kind    eventKind
	key     uint64
	exit    Exit            // evExit
	reason  EndReason       // evEject, evRecycle
	detail  string          // evRecycle: what /status shows; evKill: why the guard kills
	early   bool            // evRecycle: the memory guard recycles it for its growth, before its budget
	err     error           // evShortage, evStartFailed
	req     *replaceRequest // evReplace
	mem     uint64          // evSample
	measure MemoryMeasure   // evSample
	n       int             // evHealth
	until   time.Time       // evOutOfRotation
}

// mailbox queues events for a slot's loop. Posting never blocks, so the
// health checker, the sampler and the proxy never wait for a slot.
type mailbox struct {
	mu     sync.Mutex // protects events
	events []event
	ready  chan struct{} // holds a token while events wait
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

func (b *mailbox) post(ev event) {
	b.mu.Lock()
	b.events = append(b.events, ev)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take returns the waiting events, oldest first.
func (b *mailbox) take() []event {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs := b.events
	b.events = nil
	return evs
}
