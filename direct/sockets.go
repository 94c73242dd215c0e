package direct

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/nodeipc"
)

// ErrClosed says the sockets were closed.
var ErrClosed = errors.New("direct sockets closed")

// Sockets are the public listening sockets of direct mode, one per slot.
// Create them with Open. They are safe for concurrent use.
//
// They also route: told which workers serve (Serve, Unserve), they steer
// new connections away from the slots that have no serving worker, and
// pass the connections already queued on such a slot to a serving worker
// (see bridge.go).
type Sockets struct {
	log hclog.Logger

	mu        sync.Mutex // protects everything below
	addr      string     // the bound address, its port resolved once the first socket is bound
	owner     int        // the uid the sockets are made for (0: percore\'s own)
	files     map[int]*os.File
	order     []int             // the slots in the order of the kernel's SO_REUSEPORT group
	serving   map[uint64]target // the workers that serve their slot's socket, by key
	steering  []int             // the group indexes new connections go to; nil: all
	covers    map[int]*cover    // the slots whose queue percore accepts and passes on
	releasing map[int]bool      // the slots whose socket Release is closing
	handoff   bool              // the workers take passed connections over an IPC channel
	channels  map[uint64]*nodeipc.Channel
	waitNoted bool // the log said queued connections wait for want of a channel
	next      int  // round robin over the serving workers
	closed    bool

	notAccepting map[int]string // the slots whose serving worker does not accept, and why (accepting.go)
	quit         chan struct{}  // closed by Close: ends the accepting watch

	wg sync.WaitGroup // the covers' accept loops

	passed, unpassed atomic.Uint64 // the queued connections passed on, and closed for want of a worker
	unanswered       atomic.Uint64 // the queued connections passed to a worker that did not answer in time
}

// Config says where the sockets are bound and for whom.
type Config struct {
	// Addr is the public address, host:port (an empty host or port 0 as
	// net.Listen takes them).
	Addr string
	// Slots is how many sockets, those of slots 0 to Slots-1, are bound at
	// once (at least one): before percore drops to --user, which may no
	// longer bind a privileged port.
	Slots int
	// Owner is the uid the sockets are made for, percore's --user (0:
	// percore's own). Linux joins a socket to a SO_REUSEPORT group only if
	// it has the same owner, so sockets made for the user let percore add
	// more after it became that user.
	Owner int
	// Handoff says that the workers' runtime takes connections passed over
	// an IPC channel (Sockets.Channel): node, through its direct preload.
	// Without it, the connections queued on the socket of a slot without a
	// serving worker wait there for the slot's next worker.
	Handoff bool
	// Logger defaults to no logging.
	Logger hclog.Logger
}

// Open binds the sockets of the first cfg.Slots slots, so that a port
// already in use is reported before any worker starts.
func Open(cfg Config) (*Sockets, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Sockets{log: log, addr: cfg.Addr, owner: cfg.Owner, files: make(map[int]*os.File),
		serving: make(map[uint64]target), covers: make(map[int]*cover), releasing: make(map[int]bool),
		handoff: cfg.Handoff, channels: make(map[uint64]*nodeipc.Channel), quit: make(chan struct{})}
	for slot := range max(cfg.Slots, 1) {
		if _, err := s.File(slot); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Addr returns the public address the sockets are bound to, with its port
// resolved.
func (s *Sockets) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// File returns slot's listening socket, binding it on the public address
// the first time. The file stays owned by s: a caller passes it on to a
// child process and must not close it.
func (s *Sockets) File(slot int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if f := s.files[slot]; f != nil {
		return f, nil
	}
	f, bound, err := listenReusePort(s.addr, s.owner)
	if errors.Is(err, syscall.EACCES) && s.owner != 0 {
		return nil, fmt.Errorf("listen on %s for worker %d: %w (binding a port below 1024 needs root's "+
			"CAP_NET_BIND_SERVICE, which percore gave up for --user: start with the workers you will need, "+
			"or use a port of 1024 or above)", s.addr, slot, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s for worker %d: %w", s.addr, slot, err)
	}
	s.addr = bound
	s.files[slot] = f
	s.order = append(s.order, slot)
	s.log.Debug("public socket bound", "worker", slot, "addr", bound)
	s.routeLocked()
	return f, nil
}

// Release closes slot's socket once the slot is gone (scaled down) and no
// worker holds a copy any more. New connections were steered away from it
// since its last worker stopped serving, and what was queued is passed on
// before it closes, so closing it resets nothing.
func (s *Sockets) Release(slot int) {
	s.mu.Lock()
	if s.files[slot] == nil || s.releasing[slot] {
		s.mu.Unlock()
		return
	}
	s.releasing[slot] = true
	c := s.covers[slot]
	delete(s.covers, slot)
	s.mu.Unlock()
	if c != nil {
		c.stop()
		<-c.done // its descriptor is closed: percore's is the last
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.releasing, slot)
	f := s.files[slot]
	if f == nil { // closed meanwhile
		return
	}
	delete(s.files, slot)
	i := slices.Index(s.order, slot)
	// As Linux does when a socket leaves the group: the last takes its place.
	after := slices.Clone(s.order)
	after[i] = after[len(after)-1]
	after = after[:len(after)-1]
	s.steerAcrossLocked(after, f)
	if err := f.Close(); err != nil {
		s.log.Warn("close public socket", "worker", slot, "error", err)
	}
	s.order = after
	s.steering = nil // the indexes moved: steer anew
	s.routeLocked()
}

// Passed returns how many connections percore accepted from the queue of
// a slot without a serving worker: passed on to a serving worker, which
// took it, and closed because none took it within 10 s.
func (s *Sockets) Passed() (passed, closed uint64) {
	return s.passed.Load(), s.unpassed.Load()
}

// Unanswered returns how many connections percore passed to a worker that
// did not answer within 5 s (a hung worker): it holds them, and serves them
// if it recovers.
func (s *Sockets) Unanswered() uint64 { return s.unanswered.Load() }

// Slots lists the slots that hold a socket, in order.
func (s *Sockets) Slots() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots := make([]int, 0, len(s.files))
	for id := range s.files {
		slots = append(slots, id)
	}
	sort.Ints(slots)
	return slots
}

// Close stops passing connections on, closes the workers' IPC channels and
// every socket. Workers that inherited one keep their own copies until they
// exit.
func (s *Sockets) Close() error {
	s.mu.Lock()
	files := s.files
	if !s.closed {
		close(s.quit)
	}
	s.files, s.closed = nil, true
	for slot, c := range s.covers {
		c.stop()
		delete(s.covers, slot)
	}
	s.mu.Unlock()
	s.closeChannels() // ends the passes under way
	s.wg.Wait()
	var errs []error
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolvedAddr is addr with the port the kernel chose for it.
func resolvedAddr(addr string, ln net.Listener) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ln.Addr().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}
