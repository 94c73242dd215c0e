package supervisor

import (
	"sync"
	"time"
)

// oomWindow is how long a kernel OOM kill may wait to be matched with a
// worker's exit. A victim's exit reaches percore within milliseconds; a
// kill still unmatched after oomWindow was of another process of the
// cgroup (a worker's child, a neighbour of percore's), and must not be
// taken for the cause of a later SIGKILL.
const oomWindow = 10 * time.Second

// oomBacklog bounds the kills waiting to be matched.
const oomBacklog = 256

// oomLedger matches the kernel's OOM kills, which the memory cgroup only
// counts, with the worker exits they caused: each increment of the count
// is taken by one SIGKILL exit, so that workers killed together are each
// reported, and none twice. It is safe for concurrent use.
type oomLedger struct {
	counter OOMCounter // nil: OOM kills cannot be told

	mu     sync.Mutex  // protects seen, primed and owed
	seen   uint64      // the count last read
	primed bool        // seen holds a count read
	owed   []time.Time // when each kill not yet matched was first counted, oldest first
}

// newOOMLedger returns a ledger over counter (which may be nil) that owes
// none of the kills counted before now.
func newOOMLedger(counter OOMCounter) *oomLedger {
	l := &oomLedger{counter: counter}
	l.observe(time.Now())
	return l
}

// observe reads the count and notes the kills counted since it was last
// read, as seen at now.
func (l *oomLedger) observe(now time.Time) {
	if l.counter == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readLocked(now)
}

// take reports whether a kill counted within oomWindow before now is not
// yet matched with an exit, and matches it with the caller's: call it for
// a SIGKILL exit that percore did not cause.
func (l *oomLedger) take(now time.Time) bool {
	if l.counter == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readLocked(now)
	if len(l.owed) == 0 {
		return false
	}
	l.owed = l.owed[1:]
	return true
}

func (l *oomLedger) readLocked(now time.Time) {
	n, err := l.counter.Count()
	switch {
	case err != nil:
	case !l.primed:
		l.seen, l.primed = n, true
	case n > l.seen:
		for i := uint64(0); i < n-l.seen && len(l.owed) < oomBacklog; i++ {
			l.owed = append(l.owed, now)
		}
		l.seen = n
	case n < l.seen: // a new cgroup: start from its count
		l.seen = n
	}
	for len(l.owed) > 0 && now.Sub(l.owed[0]) > oomWindow {
		l.owed = l.owed[1:]
	}
}
