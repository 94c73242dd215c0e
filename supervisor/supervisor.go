package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrHurry is the cause to cancel a stop context with for a fast stop: the
// drain is cut short, workers get the stop signal and HurryGrace before
// SIGKILL.
var ErrHurry = errors.New("fast stop requested")

// CrashLoopError says the workers keep failing before they ever serve, or
// that a worker was refused (it cannot run as started, so retrying cannot
// help), so Run gave up.
type CrashLoopError struct {
	Slot     int      // the slot that reached the limit
	Attempts int      // failed starts in a row
	Last     string   // how the last attempt ended
	Output   []string // the last lines the worker printed
	Refused  bool     // the last start was refused: Run gave up at once
}

// Error implements error.
func (e *CrashLoopError) Error() string {
	var b strings.Builder
	if e.Refused {
		fmt.Fprintf(&b, "the app cannot run as started: worker %d was refused: %s", e.Slot, e.Last)
	} else {
		fmt.Fprintf(&b, "the app keeps failing at start-up: worker %d failed %d times in a row (last: %s)",
			e.Slot, e.Attempts, e.Last)
	}
	if len(e.Output) > 0 {
		b.WriteString("; its last output:")
		for _, l := range e.Output {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Supervisor keeps N workers running. Create it with New, run it with Run,
// and end it with Stop. It is safe for concurrent use.
type Supervisor struct {
	cfg     Config
	log     hclog.Logger
	nextKey atomic.Uint64

	stopOnce sync.Once
	stopping chan struct{}   // closed when Stop is called
	stopCtx  context.Context // set before stopping is closed
	fatal    chan error      // a slot that gives up sends here
	slotsWG  sync.WaitGroup  // one per running slot loop
	helpers  sync.WaitGroup  // the slots' watchers, timers and stops
	loops    sync.WaitGroup  // the replacer and the sampler

	firstOnce sync.Once
	firstUp   chan struct{} // closed when the first worker is ready or failed

	reloads   chan struct{} // a pending reload (buffered 1)
	recycles  chan recycle  // workers to replace one by one
	replacing atomic.Int64  // when the replacement under way started (Unix ns); 0: none

	ooms *oomLedger // matches the kernel's OOM kills with worker exits

	memory atomic.Pointer[memorySettings] // the guard and the spare slot in force

	fams *families // the processes of the live workers

	mu      sync.Mutex // protects slots, target, reload, waiters, ends and results
	slots   []*slot
	target  int // the number of workers wanted; slots may lag while they start
	reload  ReloadStatus
	waiters []chan ReloadStatus  // ReloadWait callers the next reload answers
	ends    map[EndReason]uint64 // worker ends by reason
	results map[string]uint64    // reloads by result
}

// New checks cfg and returns a Supervisor.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("supervisor config: %w", err)
	}
	s := &Supervisor{
		cfg:      cfg,
		log:      cfg.Logger,
		stopping: make(chan struct{}),
		fatal:    make(chan error, 1),
		reloads:  make(chan struct{}, 1),
		firstUp:  make(chan struct{}),
		target:   cfg.Workers,
		ends:     map[EndReason]uint64{},
		results:  map[string]uint64{},
		recycles: make(chan recycle, 64),
		fams:     newFamilies(procfs{}),
		ooms:     newOOMLedger(cfg.OOM),
	}
	s.memory.Store(&memorySettings{guard: cfg.Guard, spareSlot: cfg.SpareSlot})
	return s, nil
}

// memorySettings are the memory guard and the spare slot in force; a new
// plan replaces them while the workers run.
type memorySettings struct {
	guard     Guard
	spareSlot bool
}

// guard returns the memory guard in force.
func (s *Supervisor) guard() Guard { return s.memory.Load().guard }

// spareSlot reports whether a replacement may start before the worker it
// replaces stops.
func (s *Supervisor) spareSlot() bool { return s.memory.Load().spareSlot }

// SetMemory puts a new memory guard and spare-slot decision in force, for a
// new plan: the next sample of each worker is judged by g. Its intervals,
// drain and memory loop window are kept from the start: they do not depend
// on the plan.
func (s *Supervisor) SetMemory(g Guard, spareSlot bool) {
	old := s.guard()
	g.Every, g.Near, g.Drain, g.Loop = old.Every, old.Near, old.Drain, old.Loop
	g.setDefaults()
	s.memory.Store(&memorySettings{guard: g, spareSlot: spareSlot})
	if g != old {
		s.log.Info("memory guard: new limits", "budget_mib", g.Budget>>20, "hard_mib", g.Hard>>20, "stop_first", !spareSlot)
	}
}

// Run starts the workers and supervises them until Stop has stopped them all
// (it then returns nil) or until they keep failing at start-up (it then stops
// the rest within the stop budget and returns a *CrashLoopError).
func (s *Supervisor) Run() error {
	if g := s.guard(); g.On() {
		s.log.Info("memory guard: a worker is recycled so that it is gone before its budget at the rate it grows, killed above the hard limit",
			"budget_mib", g.Budget>>20, "hard_mib", g.Hard>>20, "every", g.Every, "near", g.Near,
			"near_above_percent", NearPercent, "drain", g.Drain, "stop_first", !s.spareSlot(),
			"cgroup_checked", s.cfg.Cgroup != nil)
	}
	s.loops.Add(2)
	go s.replacer()
	go s.sampler()

	var err error
	select {
	case <-s.stopping:
	case err = <-s.fatal:
	case <-s.startSlots():
		select {
		case <-s.stopping:
		case err = <-s.fatal:
		}
	}
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.Stop(ctx)
	}
	s.slotsWG.Wait()
	s.helpers.Wait()
	s.loops.Wait()
	return err
}

// Stop asks every worker to stop: each stays routed until the Router sees
// it idle, is drained, and gets the stop signal, then or, still busy, when
// only HandlerShare(ShutdownTimeout) is left before ctx's deadline; what is
// left of it at the deadline is killed. Give ctx the whole shutdown budget
// as its deadline; cancel it with cause ErrHurry for a fast stop. Stop
// returns at once; Run returns when every worker is gone. Calls after the
// first are ignored.
func (s *Supervisor) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		// Under mu, as slots are added: a Scale or the start of the later
		// slots either adds its slots before the stop, which then stops
		// them, or sees the stop and adds none.
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopCtx = ctx
		close(s.stopping)
	})
}

// stoppingLocked reports whether Stop was called; the caller holds mu.
func (s *Supervisor) stoppingLocked() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// startSlots starts the first worker alone, and the others once it is
// ready (or has failed, or the ready timeout passed): a JavaScript runtime's
// start-up is CPU-bound, so on a small machine the first worker answers
// sooner when it does not share the CPUs with the others' start-up. It
// returns a channel that is closed when every slot has started.
func (s *Supervisor) startSlots() <-chan struct{} {
	done := make(chan struct{})
	s.mu.Lock()
	s.addSlotLocked()
	s.mu.Unlock()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		defer close(done)
		t := time.NewTimer(s.cfg.ReadyTimeout)
		defer t.Stop()
		select {
		case <-s.firstUp:
		case <-t.C:
		case <-s.stopping:
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for len(s.slots) < s.target && !s.stoppingLocked() {
			s.addSlotLocked()
		}
	}()
	return done
}

// firstOutcome notes that a worker became ready or failed to.
func (s *Supervisor) firstOutcome() { s.firstOnce.Do(func() { close(s.firstUp) }) }

func (s *Supervisor) addSlotLocked() {
	sl := newSlot(len(s.slots))
	s.slots = append(s.slots, sl)
	s.slotsWG.Add(1)
	go s.runSlot(sl)
}

// workerCount is the number of workers wanted, as PERCORE_WORKER_COUNT.
func (s *Supervisor) workerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.target
}

// readyElsewhere reports whether a slot other than own has a worker that
// serves. A slot's own view may still show the worker whose exit it is
// handling.
func (s *Supervisor) readyElsewhere(own *slot) bool {
	for _, sl := range s.slotList() {
		if sl == own {
			continue
		}
		sl.mu.Lock()
		ready := sl.view.phase.State() == StateReady
		sl.mu.Unlock()
		if ready {
			return true
		}
	}
	return false
}

func (s *Supervisor) slotList() []*slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*slot(nil), s.slots...)
}

// Snapshot returns the state of every worker slot, in slot order. Each
// slot's status is the one its loop last published.
func (s *Supervisor) Snapshot() []WorkerStatus {
	slots := s.slotList()
	now := time.Now()
	out := make([]WorkerStatus, len(slots))
	for i, sl := range slots {
		out[i] = sl.status(now)
	}
	return out
}

// ReadyWorkers returns how many workers take new requests now: ready, and
// not out of rotation. It is the readiness /readyz and /status report.
func (s *Supervisor) ReadyWorkers() int {
	n := 0
	for _, ws := range s.Snapshot() {
		if ws.NotRouted == "" {
			n++
		}
	}
	return n
}

// MaxWorkers bounds Scale.
const MaxWorkers = 1024

// Scale sets the number of workers to n (1..MaxWorkers) and returns it. New
// slots start at once; removed slots (the highest ids) drain first.
func (s *Supervisor) Scale(n int) (int, error) {
	if n < 1 || n > MaxWorkers {
		return 0, fmt.Errorf("scale to %d: want 1 to %d workers", n, MaxWorkers)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stoppingLocked() {
		return 0, errStopping
	}
	s.target = n
	for len(s.slots) < n {
		s.addSlotLocked()
	}
	for len(s.slots) > n {
		last := s.slots[len(s.slots)-1]
		s.slots = s.slots[:len(s.slots)-1]
		last.retire()
	}
	s.log.Info("scaled", "workers", n)
	return n, nil
}

// ScaleBy adds delta workers (negative: removes), never going below one.
func (s *Supervisor) ScaleBy(delta int) (int, error) {
	n := s.workerCount() + delta
	if n < 1 {
		n = 1
	}
	return s.Scale(n)
}

// count notes that a worker ended (or was replaced) for reason.
func (s *Supervisor) count(reason EndReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends[reason]++
}

// Counts returns how many workers ended for each reason since percore
// started (each a counted one of EndReasons), and how many reloads ended
// for each result ("done", "failed").
func (s *Supervisor) Counts() (ends map[EndReason]uint64, reloads map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ends = make(map[EndReason]uint64, len(s.ends))
	for k, v := range s.ends {
		ends[k] = v
	}
	reloads = make(map[string]uint64, len(s.results))
	for k, v := range s.results {
		reloads[k] = v
	}
	return ends, reloads
}
