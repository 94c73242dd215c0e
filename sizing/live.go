package sizing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/machine"
)

// DefaultFollowEvery is how often Live reads the limits again (default 2s).
const DefaultFollowEvery = 2 * time.Second

// Change is one new plan: what it replaced, when and why.
type Change struct {
	From, To Sized
	At       time.Time
	Why      string // "scale", "cgroup limits changed", "SIGHUP", ...
	Diff     string // Diff(From, To)
}

// LiveConfig configures a Live.
type LiveConfig struct {
	Planner Planner
	// Detect reads the resources again (default machine.Detect).
	Detect func() (machine.Resources, error)
	// Follow makes Run read the limits every Every and plan again when
	// they change.
	Follow bool
	Every  time.Duration // default DefaultFollowEvery
	// Apply puts a new plan in force; Live calls it once per change, one
	// at a time, never while holding its lock, and Plan already returns
	// the new plan when it runs.
	Apply  func(Change)
	Logger hclog.Logger
}

// Live is the plan in force, planned again whenever an input changes: a
// scale, or the limits of the cgroup percore runs in. Its methods are safe
// for concurrent use.
type Live struct {
	cfg     LiveConfig
	applyMu sync.Mutex // one change applied at a time, in order

	mu      sync.Mutex // protects planner, cur, last
	planner Planner
	cur     Sized
	last    Change
}

// NewLive makes the first plan from res.
func NewLive(cfg LiveConfig, res machine.Resources) (*Live, error) {
	if cfg.Detect == nil {
		cfg.Detect = machine.Detect
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultFollowEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	first, err := cfg.Planner.Plan(res)
	if err != nil {
		return nil, err
	}
	return &Live{cfg: cfg, planner: cfg.Planner, cur: first}, nil
}

// Plan returns the plan in force.
func (l *Live) Plan() Sized {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Last returns the last change; its At is zero when the first plan is still
// in force.
func (l *Live) Last() Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Scale plans for n workers, as the user asked (by signal, the control
// socket or percore scale), and applies the plan. A count that does not fit
// the memory is allowed, with the plan's warnings logged, as --workers is at
// start.
func (l *Live) Scale(n int) (Sized, error) {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	l.mu.Lock()
	pl := l.planner
	l.mu.Unlock()
	pl.Settings.Workers, pl.Settings.WorkersSource = n, "scale"
	next, err := pl.Plan(l.Plan().Resources)
	if err != nil {
		return Sized{}, fmt.Errorf("plan %d workers: %w", n, err)
	}
	l.set(pl, next, "scale")
	return next, nil
}

// Refresh reads the resources again and applies a new plan when they
// changed; why says what asked (a tick, SIGHUP).
func (l *Live) Refresh(why string) error {
	res, err := l.cfg.Detect()
	if err != nil {
		return fmt.Errorf("read the limits again: %w", err)
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	cur := l.Plan()
	if sameLimits(cur.Resources, res) {
		return nil
	}
	l.mu.Lock()
	pl := l.planner
	l.mu.Unlock()
	next, err := pl.Plan(res)
	if err != nil {
		return err
	}
	l.set(pl, next, why)
	return nil
}

// sameLimits reports whether two readings would plan alike.
func sameLimits(a, b machine.Resources) bool {
	return a.CPUs == b.CPUs && a.Memory == b.Memory && a.Swap == b.Swap
}

// set puts next in force and applies it when it changes anything. The
// caller holds applyMu.
func (l *Live) set(pl Planner, next Sized, why string) {
	l.mu.Lock()
	from := l.cur
	l.planner, l.cur = pl, next
	ch := Change{From: from, To: next, At: time.Now(), Why: why, Diff: Diff(from, next)}
	if ch.Diff != "" {
		l.last = ch
	}
	l.mu.Unlock()
	if ch.Diff == "" {
		return
	}
	l.cfg.Logger.Info("plan: "+ch.Diff, "why", why)
	for _, w := range next.Warnings {
		l.cfg.Logger.Warn(w)
	}
	if l.cfg.Apply != nil {
		l.cfg.Apply(ch)
	}
}

// Run reads the limits every Every while ctx lasts, when following them; it
// returns when ctx ends. It is a run.Group actor's execute.
func (l *Live) Run(ctx context.Context) error {
	if !l.cfg.Follow {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Refresh("cgroup limits changed"); err != nil {
				l.cfg.Logger.Warn("following the limits", "error", err)
			}
		}
	}
}
