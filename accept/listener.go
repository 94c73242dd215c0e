package accept

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Backoff between two accepts that failed for lack of resources: the first
// pause is BackoffMin, each next one twice as long, up to BackoffMax (the
// figures of Go's net/http server).
const (
	BackoffMin = 5 * time.Millisecond
	BackoffMax = time.Second
)

// DefaultSettle is Config.Settle's default.
const DefaultSettle = 5 * time.Second

// probeWindow is how long an accept after a failure waits for a connection.
// An accept that times out got past the kernel's descriptor allocation (it
// allocates the descriptor before it looks for a connection), which shows the
// shortage is over although no client came.
const probeWindow = 10 * time.Millisecond

// Config configures a Listener.
type Config struct {
	// Name names the listener in logs and in Err ("public", "admin").
	Name string
	// Logger receives one warning when a burst of failures starts and one
	// line with its counts when it ends (default: a null logger).
	Logger hclog.Logger
	// Settle is how long the listener must accept again before a burst of
	// failures counts as over and its counts are logged; a failure within
	// Settle belongs to the same burst, so a listener that flaps at the
	// limit (each freed descriptor lets one accept through) logs one burst,
	// not one per flap (default 5s).
	Settle time.Duration
	// Spare keeps one descriptor in reserve (a duplicate of the listening
	// socket). While accepts fail for lack of descriptors, the listener
	// watches its queue through the spare instead of pausing, and when a
	// client waits there the spare is closed to accept it, then reopened
	// when that connection closes. An admin listener uses it to answer each
	// probe, with a failure and at once, while percore has no descriptor
	// left.
	Spare bool
	// Refill are listeners with a spare whose spare this listener reserves
	// again, if it is out, before each accept it retries after a shortage.
	// A descriptor that frees during a shortage then goes back to their
	// reserve before this listener takes it for a new connection: a public
	// listener with a full queue would otherwise take every one.
	Refill []*Listener
}

// Listener is a net.Listener whose Accept retries resource errors with a
// backoff instead of returning them. It is safe for concurrent use; Accept
// is meant for one goroutine at a time.
type Listener struct {
	ln  net.Listener
	cfg Config

	closed    chan struct{}
	closeOnce sync.Once

	failing  atomic.Pointer[failure] // set while the listener is not accepting
	failures atomic.Uint64           // failed accepts since the start

	mu    sync.Mutex // protects spare, burst
	spare *os.File   // the reserved descriptor, nil when none is held
	burst *burst     // the burst being logged, nil when none

	spareBack chan struct{} // gets a value when the spare is reserved again
}

// failure is the current spell of failed accepts.
type failure struct {
	since time.Time
	err   error
}

// burst is a run of failed accepts as the log tells it: it starts with a
// warning and ends, with its counts, once the listener has accepted for
// Config.Settle.
type burst struct {
	since     time.Time
	err       error
	count     uint64
	recovered time.Time   // when the listener last accepted again
	end       *time.Timer // runs endBurst once the listener has settled
}

// New returns ln with retrying accepts. With cfg.Spare, it reserves its
// spare descriptor at once.
func New(ln net.Listener, cfg Config) *Listener {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	l := &Listener{ln: ln, cfg: cfg, closed: make(chan struct{}), spareBack: make(chan struct{}, 1)}
	if cfg.Spare {
		l.restoreSpare()
	}
	return l
}

// ResourceError reports whether err is a failure that passes once
// descriptors or memory are freed: EMFILE, ENFILE, ENOBUFS or ENOMEM.
func ResourceError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// Accept implements net.Listener. It returns the next connection, or the
// error that ends the listener (its close); resource errors are retried.
func (l *Listener) Accept() (net.Conn, error) {
	backoff := BackoffMin
	for {
		probing := l.failing.Load() != nil
		if probing {
			l.refill()
			l.setDeadline(time.Now().Add(probeWindow))
		}
		c, err := l.ln.Accept()
		if probing {
			l.setDeadline(time.Time{})
		}
		switch {
		case err == nil:
			l.recovered()
			return c, nil
		case probing && isTimeout(err):
			l.recovered()
			backoff = BackoffMin
			continue
		case errors.Is(err, syscall.ECONNABORTED):
			continue // a client that left before its accept
		case !ResourceError(err):
			return nil, err
		}
		l.failed(err)
		if l.cfg.Spare {
			if c := l.rescue(backoff); c != nil {
				return c, nil
			}
		} else if !l.nap(backoff, nil) {
			return nil, net.ErrClosed
		}
		backoff = min(backoff*2, BackoffMax)
	}
}

// failed counts one failed accept and warns when it starts a burst.
func (l *Listener) failed(err error) {
	l.failures.Add(1)
	now := time.Now()
	if l.failing.Load() == nil {
		l.failing.Store(&failure{since: now, err: err})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.burst != nil {
		l.burst.count++
		if l.burst.end != nil {
			l.burst.end.Stop()
			l.burst.end = nil
		}
		return
	}
	l.burst = &burst{since: now, err: err, count: 1}
	l.cfg.Logger.Warn("listener cannot accept connections; retrying with backoff until it can",
		"listener", l.cfg.Name, "error", err)
}

// recovered notes that the listener accepts again; the burst's counts are
// logged once it has settled.
func (l *Listener) recovered() {
	if l.failing.Load() == nil {
		return
	}
	l.failing.Store(nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.burst != nil && l.burst.end == nil {
		l.burst.recovered = time.Now()
		l.burst.end = time.AfterFunc(l.cfg.Settle, l.endBurst)
	}
}

// endBurst logs the end of a burst, unless the listener failed again.
func (l *Listener) endBurst() {
	l.mu.Lock()
	b := l.burst
	if b == nil || b.end == nil || l.failing.Load() != nil {
		l.mu.Unlock()
		return
	}
	l.burst = nil
	l.mu.Unlock()
	l.cfg.Logger.Warn("listener accepting again", "listener", l.cfg.Name, "failed_accepts", b.count,
		"for", b.recovered.Sub(b.since).Round(time.Millisecond), "error", b.err)
}

// Err returns why the listener is not accepting connections now, or nil
// while it is.
func (l *Listener) Err() error {
	f := l.failing.Load()
	if f == nil {
		return nil
	}
	return &NotAcceptingError{Listener: l.cfg.Name, Since: f.since, Err: f.err}
}

// Failures returns how many accepts have failed for lack of resources since
// the listener was made.
func (l *Listener) Failures() uint64 { return l.failures.Load() }

// Close implements net.Listener. It ends a pending backoff, releases the
// spare descriptor and closes the listener; it may be called more than once.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		l.mu.Lock()
		if l.burst != nil && l.burst.end != nil {
			l.burst.end.Stop()
		}
		if l.spare != nil {
			_ = l.spare.Close()
			l.spare = nil
		}
		l.mu.Unlock()
		err = l.ln.Close()
	})
	return err
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// NotAcceptingError says a listener is not accepting connections.
type NotAcceptingError struct {
	Listener string    // its name
	Since    time.Time // when the first accept of the spell failed
	Err      error     // the first failure
}

func (e *NotAcceptingError) Error() string {
	return e.Listener + " listener not accepting connections for " +
		time.Since(e.Since).Round(time.Millisecond).String() + ": " + e.Err.Error()
}

// Unwrap returns the first failure.
func (e *NotAcceptingError) Unwrap() error { return e.Err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// nap waits d, or less when wake gets a value; it reports false when the
// listener closed meanwhile.
func (l *Listener) nap(d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-l.closed:
		return false
	}
	return true
}

// setDeadline sets the accept deadline where the listener has one.
func (l *Listener) setDeadline(t time.Time) {
	if d, ok := l.ln.(interface{ SetDeadline(time.Time) error }); ok {
		_ = d.SetDeadline(t)
	}
}
