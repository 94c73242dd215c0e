package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/direct"
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/proxy"
	"github.com/percore/percore/supervisor"
)

// mode is how connections reach the workers.
type mode int

const (
	// modeProxy puts percore's HTTP/1.1 proxy between the clients and the
	// workers: per-request balancing, retries, a request queue, counters.
	modeProxy mode = iota
	// modeDirect lets the kernel hand each connection to a worker through
	// one SO_REUSEPORT socket per slot: no hop, any protocol.
	modeDirect
)

// String returns "proxy" or "direct".
func (m mode) String() string {
	switch m {
	case modeProxy:
		return "proxy"
	case modeDirect:
		return "direct"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

func setMode(c *config, v string) error {
	switch v {
	case "proxy":
		c.Mode = modeProxy
	case "direct":
		c.Mode = modeDirect
	default:
		return errors.New("want proxy or direct")
	}
	return nil
}

// checkMode refuses --mode direct for a runtime that cannot serve the socket
// it inherits.
func checkMode(c *config) error {
	if c.Mode != modeDirect || len(c.Command) == 0 {
		return nil
	}
	if rt := c.runtime(); rt.DirectPreload == nil {
		return usagef("--mode direct cannot run %s workers: %s", rt, rt.NoDirect)
	}
	if why := c.Runtimes.NoDirectCommand(c.Command); why != "" {
		return usagef("--mode direct cannot run these workers: %s", why)
	}
	return nil
}

// modeWarning says, for percore plan and at start, why --mode direct will
// refuse the workers of a command that checkMode lets through: a wrapper
// such as npm starts node as a child process that never gets descriptor 3,
// the public socket, which only the started worker can tell (the preload's
// check of the descriptor). "" when there is nothing to say.
func modeWarning(c *config) string {
	if c.Mode != modeDirect || len(c.Command) == 0 {
		return ""
	}
	w := c.Runtimes.ChildWrapper(c.Command)
	if w == "" {
		return ""
	}
	return fmt.Sprintf("--mode direct will refuse these workers: %s starts node as a child process of its own, which "+
		"does not get descriptor 3, the public socket, so the app would listen on PORT itself; run node itself "+
		"(node server.js), or use --mode proxy", w)
}

// directParts are what direct mode adds: the public sockets and the
// preload on disk.
type directParts struct {
	sockets *direct.Sockets
	dir     string // holds the preload; removed by close
}

// openDirect binds the public sockets of the first workers, before percore
// drops to --user, and makes them that user's, so that percore may add
// more afterwards.
func openDirect(cfg *config, workers int, log hclog.Logger) (*direct.Sockets, error) {
	owner := 0
	if cfg.User != nil {
		owner = cfg.User.uid
	}
	s, err := direct.Open(direct.Config{Addr: cfg.publicAddr(), Slots: workers, Owner: owner,
		Handoff: cfg.runtime().DirectHandoff, Logger: log.Named("direct")})
	if err != nil {
		return nil, fmt.Errorf("--mode direct: %w", err)
	}
	return s, nil
}

// writePreload writes the runtime's preload of mode m where the workers can
// read it, after percore became --user. It writes nothing, and returns "",
// for a runtime without one.
func writePreload(rt jsruntime.Runtime, m mode) (dir, path string, err error) {
	script := rt.ProxyPreload
	if m == modeDirect {
		script = rt.DirectPreload
	}
	if script == nil {
		return "", "", nil
	}
	dir, err = makeTempDir("percore-" + m.String() + "-")
	if err != nil {
		return "", "", fmt.Errorf("--mode %s: %w", m, err)
	}
	ext := ".js"
	if m == modeDirect {
		ext = ".cjs" // see jsruntime.Runtime.DirectPreload
	}
	path = filepath.Join(dir, rt.Name+"-preload"+ext)
	if err := os.WriteFile(path, script, 0o444); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("--mode %s: write the preload: %w", m, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp makes it 0700
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("--mode %s: %w", m, err)
	}
	return dir, path, nil
}

// tempDirs are where makeTempDir tries, in order: $TMPDIR, /tmp, and
// /dev/shm, a tmpfs that container runtimes mount even over a read-only
// root (docker run --read-only).
func tempDirs() []string {
	dirs := []string{os.TempDir()}
	for _, d := range []string{"/tmp", "/dev/shm"} {
		if d != dirs[0] {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// makeTempDir makes a directory for files of percore's that the workers
// read, in the first of tempDirs that lets it: a TMPDIR of root's own does
// not let --user write, and a read-only root lets nobody write in /tmp.
func makeTempDir(prefix string) (string, error) {
	var errs []error
	for _, d := range tempDirs() {
		dir, err := os.MkdirTemp(d, prefix)
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func (d *directParts) close() {
	if d == nil {
		return
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
	d.sockets.Close()
}

// supervisorSockets are the sockets as the supervisor takes them: nil in
// proxy mode.
func (d *directParts) supervisorSockets() supervisor.Sockets {
	if d == nil {
		return nil
	}
	return d.sockets
}

// directRouter tells the proxy's pool (health checks, status) and the
// direct sockets (steering, passing queued connections on) which workers
// serve.
type directRouter struct {
	pool    *proxy.Pool
	sockets *direct.Sockets
}

// Add makes a ready worker eligible for new connections.
func (r directRouter) Add(key uint64, slot int, addr string) {
	r.pool.Add(key, slot, addr)
	r.sockets.Serve(key, slot, addr)
}

// Drain steers new connections away from the worker's slot at once.
func (r directRouter) Drain(key uint64) <-chan struct{} {
	r.sockets.Unserve(key)
	return r.pool.Drain(key)
}

// Idle is the pool's: the pool sees no requests in direct mode, so a
// worker is idle at once and gets the stop signal as soon as a stop begins;
// the supervisor counts its open connections itself.
func (r directRouter) Idle(key uint64) <-chan struct{} { return r.pool.Idle(key) }

// InFlight is the pool's, which sees no requests in direct mode.
func (r directRouter) InFlight(key uint64) int { return r.pool.InFlight(key) }

// router is what the supervisor routes through: the pool alone in proxy
// mode.
func (d *directParts) router(pool *proxy.Pool) supervisor.Router {
	if d == nil {
		return pool
	}
	return directRouter{pool: pool, sockets: d.sockets}
}

// refusedExitCode is the exit code of the direct-mode preload's refusal,
// 0 in proxy mode.
func (d *directParts) refusedExitCode() int {
	if d == nil {
		return 0
	}
	return jsruntime.RefusedExitCode
}

// directSockets are the sockets, nil in proxy mode.
func (d *directParts) directSockets() *direct.Sockets {
	if d == nil {
		return nil
	}
	return d.sockets
}

// closedListener stands for the public listener in direct mode, where
// percore accepts nothing: the early-stop path closes it like a real one.
type closedListener struct{}

func (closedListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (closedListener) Close() error              { return nil }
func (closedListener) Addr() net.Addr            { return &net.TCPAddr{} }
