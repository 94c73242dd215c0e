package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/accept"
)

// Target is one serving worker to check.
type Target struct {
	Key  uint64
	Slot int
	// Addr is where the worker's app is reached: its loopback port or Unix
	// socket, or in direct mode its private health listener.
	Addr string
	// Ping is the worker's ping address (127.0.0.1:port or a Unix
	// socket's path), where the runtime's preload answers "pong\n" to
	// "ping\n"; "" when it has none.
	Ping string
}

// Fleet is the checker's view of the workers: which to check, and what to
// do with one that keeps failing.
type Fleet interface {
	// HealthTargets lists the workers now serving.
	HealthTargets() []Target
	// SetHealthFailures records a worker's consecutive failures.
	SetHealthFailures(key uint64, n int)
	// Eject takes a worker out of rotation and restarts it.
	Eject(key uint64, reason string)
}

// EjectReason is the reason the checker gives Fleet.Eject: the words
// /status and the restarts metric show for an ejected worker.
const EjectReason = "health check"

// CheckConfig configures active health checks.
//
// By default a worker is pinged: percore connects to its ping address and
// sends "ping\n", and the runtime's preload answers "pong\n" from the
// worker's event loop. That proves the loop runs (a TCP connect alone would
// not: the kernel completes handshakes while the loop is blocked), whatever
// protocol the app speaks, and the app's handlers and logs never see it.
// When nothing listens at the ping address (a command without the preload,
// a Deno app without the permissions for it), or the worker has none, the
// check falls back to "OPTIONS * HTTP/1.1" sent to Addr: any bytes the
// worker answers pass (an h2c server sends its SETTINGS frame), and so
// does the worker closing the connection once the probe arrived (Bun's
// node:http refuses "*" as a target), which the loop must run to do; a
// connection left silent until the timeout fails.
type CheckConfig struct {
	// Path, when set, is requested with GET instead, on every worker; a
	// 2xx or 3xx answer passes.
	Path string
	// Interval between checks of each worker (default 5s).
	Interval time.Duration
	// Timeout of one check (default 2s).
	Timeout time.Duration
	// Threshold is how many failures in a row eject a worker (default 3).
	Threshold int
}

// Defaults of CheckConfig.
const (
	DefaultCheckInterval  = 5 * time.Second
	DefaultCheckTimeout   = 2 * time.Second
	DefaultCheckThreshold = 3
)

// Checker checks every serving worker on a ticker.
type Checker struct {
	cfg    CheckConfig
	fleet  Fleet
	log    hclog.Logger
	fails  map[uint64]int // owned by Run's goroutine
	counts [checkKinds][2]atomic.Uint64
	stop   chan struct{}
	once   sync.Once
}

// CheckKind is how a worker was checked.
type CheckKind int

// The kinds of check.
const (
	// CheckPing is "ping\n" to the worker's ping address.
	CheckPing CheckKind = iota
	// CheckOptions is "OPTIONS * HTTP/1.1", when the worker has no ping
	// listener.
	CheckOptions
	// CheckGet is a GET of CheckConfig.Path.
	CheckGet
	checkKinds
)

// String returns "ping", "options" or "get".
func (k CheckKind) String() string {
	switch k {
	case CheckPing:
		return "ping"
	case CheckOptions:
		return "options"
	case CheckGet:
		return "get"
	}
	return "CheckKind(" + strconv.Itoa(int(k)) + ")"
}

// CheckCount is how many checks of one kind passed and failed.
type CheckCount struct {
	Kind           CheckKind
	Passed, Failed uint64
}

// Counts returns how many checks of each kind passed and failed since the
// Checker was made. It is safe for concurrent use.
func (c *Checker) Counts() []CheckCount {
	out := make([]CheckCount, checkKinds)
	for k := range out {
		out[k] = CheckCount{Kind: CheckKind(k), Passed: c.counts[k][0].Load(), Failed: c.counts[k][1].Load()}
	}
	return out
}

// NewChecker returns a Checker.
func NewChecker(cfg CheckConfig, fleet Fleet, log hclog.Logger) *Checker {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCheckInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCheckTimeout
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultCheckThreshold
	}
	return &Checker{cfg: cfg, fleet: fleet, log: log, fails: map[uint64]int{}, stop: make(chan struct{})}
}

// Run checks until Stop; it is a run.Group actor.
func (c *Checker) Run() error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return nil
		case <-t.C:
			c.round()
		}
	}
}

// Stop ends Run.
func (c *Checker) Stop() { c.once.Do(func() { close(c.stop) }) }

// round checks every worker at once and acts on the results.
func (c *Checker) round() {
	targets := c.fleet.HealthTargets()
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind, err := c.check(tg)
			errs[i] = err
			if !errors.Is(err, errNoResources) {
				c.count(kind, err == nil)
			}
		}()
	}
	wg.Wait()
	seen := make(map[uint64]int, len(targets))
	for i, tg := range targets {
		n := 0
		if errors.Is(errs[i], errNoResources) {
			// percore's own shortage says nothing of the worker: keep
			// its count as it was.
			c.log.Debug("health check skipped", "worker", tg.Slot, "error", errs[i])
			seen[tg.Key] = c.fails[tg.Key]
			continue
		}
		if errs[i] != nil {
			n = c.fails[tg.Key] + 1
			c.log.Warn("worker failed a health check", "worker", tg.Slot, "failures", n, "error", errs[i])
		}
		seen[tg.Key] = n
		c.fleet.SetHealthFailures(tg.Key, n)
		if n >= c.cfg.Threshold {
			c.fleet.Eject(tg.Key, EjectReason)
		}
	}
	c.fails = seen
}

// errNoResources says a check could not run for lack of file descriptors
// or memory in percore; it is not the worker's failure.
var errNoResources = errors.New("percore is out of file descriptors or memory")

// count adds one check of kind to the counts.
func (c *Checker) count(kind CheckKind, passed bool) {
	i := 1
	if passed {
		i = 0
	}
	c.counts[kind][i].Add(1)
}

// check runs one check of tg and says which.
func (c *Checker) check(tg Target) (CheckKind, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	if c.cfg.Path != "" {
		return CheckGet, c.get(ctx, tg.Addr)
	}
	if tg.Ping != "" {
		if err := c.ping(ctx, tg.Ping); !errors.Is(err, errNoPing) {
			return CheckPing, err
		}
	}
	return CheckOptions, c.options(ctx, tg.Addr)
}

// errNoPing says that nothing listens at a worker's ping address.
var errNoPing = errors.New("no ping listener")

// dial connects to addr (host:port, or a Unix socket's path) within ctx,
// and sets the connection's deadline to ctx's.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	conn, err := d.DialContext(ctx, network, addr)
	if accept.ResourceError(err) {
		return nil, fmt.Errorf("connect: %w: %w", errNoResources, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	return conn, nil
}

// ping sends "ping\n" to the worker's ping listener, which must answer
// "pong\n". It returns errNoPing when nothing listens there.
func (c *Checker) ping(ctx context.Context, addr string) error {
	conn, err := dial(ctx, addr)
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w at %s: %w", errNoPing, addr, err)
	}
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return fmt.Errorf("ping: send: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("ping: no answer within %s: %w", c.cfg.Timeout, err)
	}
	if line != "pong\n" {
		return fmt.Errorf("ping: answered %q, want \"pong\"", strings.TrimSpace(line))
	}
	return nil
}

// options sends "OPTIONS * HTTP/1.1" to addr: any bytes answered pass, and
// so does the worker closing the connection once the probe arrived.
func (c *Checker) options(ctx context.Context, addr string) error {
	conn, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nUser-Agent: percore-health\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	var b [1]byte
	n, err := conn.Read(b[:])
	if n > 0 || closedByPeer(err) {
		return nil
	}
	return fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
}

// get requests c.cfg.Path from addr: a 2xx or 3xx answer passes.
func (c *Checker) get(ctx context.Context, addr string) error {
	conn, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := "GET " + c.cfg.Path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: percore-health\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
	}
	code, err := statusCode(line)
	if err != nil {
		return err
	}
	if code < 200 || code > 399 {
		return fmt.Errorf("GET %s answered %d", c.cfg.Path, code)
	}
	return nil
}

// closedByPeer reports an error that means the worker closed or reset the
// connection, as opposed to a timeout.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// statusCode reads the code of an HTTP/1.x status line.
func statusCode(line string) (int, error) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, fmt.Errorf("not an HTTP status line: %q", strings.TrimSpace(line))
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 999 {
		return 0, fmt.Errorf("bad status code in %q", strings.TrimSpace(line))
	}
	return code, nil
}
