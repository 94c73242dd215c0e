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
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/accept"
)

// Target is one serving worker to check.
type Target struct {
	Key  uint64
	Slot int
	Addr string
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

// CheckConfig configures active health checks.
type CheckConfig struct {
	// Path, when set, is requested with GET; a 2xx or 3xx answer passes.
	// When empty the check sends "OPTIONS * HTTP/1.1", which the app's
	// request handler answers: any HTTP answer passes, because it proves
	// the worker's event loop ran, and so does the worker closing the
	// connection once the probe arrived (Bun's node:http refuses "*" as a
	// target, and an app's clientError handler then destroys the socket),
	// which the loop must run to do. A TCP connect alone would not: the
	// kernel completes handshakes while the loop is blocked.
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
	cfg   CheckConfig
	fleet Fleet
	log   hclog.Logger
	fails map[uint64]int // owned by Run's goroutine
	stop  chan struct{}
	once  sync.Once
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
			errs[i] = c.check(tg.Addr)
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
			c.fleet.Eject(tg.Key, "health check")
		}
	}
	c.fails = seen
}

// errNoResources says a check could not run for lack of file descriptors
// or memory in percore; it is not the worker's failure.
var errNoResources = errors.New("percore is out of file descriptors or memory")

// check runs one check against addr.
func (c *Checker) check(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	conn, err := d.DialContext(ctx, network, addr)
	if accept.ResourceError(err) {
		return fmt.Errorf("connect: %w: %w", errNoResources, err)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	req := "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nUser-Agent: percore-health\r\nConnection: close\r\n\r\n"
	if c.cfg.Path != "" {
		req = "GET " + c.cfg.Path + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: percore-health\r\nConnection: close\r\n\r\n"
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && c.cfg.Path == "" && line == "" && closedByPeer(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err)
	}
	code, err := statusCode(line)
	if err != nil {
		return err
	}
	if c.cfg.Path != "" && (code < 200 || code > 399) {
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
