package supervisor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// PrepareFunc adjusts one worker's argv and environment before it starts,
// for example to pass a heap limit the way its runtime takes it. It must not
// modify its inputs.
type PrepareFunc func(argv, env []string, port int) ([]string, []string, error)

// Config configures a Supervisor.
type Config struct {
	// Command is the worker's argv. Required.
	Command []string
	// Env is the environment every worker starts from (default os.Environ()).
	Env []string
	// Workers is how many workers to run (at least 1).
	Workers int
	// Prepare, when set, adjusts each worker's argv and env.
	Prepare PrepareFunc
	// Launcher starts processes and reports their exits. Required.
	Launcher Launcher
	// Router learns which workers take traffic. Required.
	Router Router
	// Output receives the workers' stdout and stderr. Required.
	Output *Output
	// Logger is where lifecycle events go (default: a null logger).
	Logger hclog.Logger
	// ReadyTimeout bounds how long a new worker may take to listen on its
	// port (default 30s).
	ReadyTimeout time.Duration
	// StopSignal is sent to a worker's process group, and to the processes
	// the worker started outside it, to stop it (default SIGTERM).
	StopSignal syscall.Signal
	// MaxBootFailures is how many starts in a row may fail (exit before
	// being ready, not be ready in time, or exit within MinUptime of being
	// ready), while no other worker is ready, before Run gives up (default 5).
	MaxBootFailures int
	// BackoffMin and BackoffMax bound the restart delay, which doubles after
	// each failed start (defaults 100ms and 10s).
	BackoffMin, BackoffMax time.Duration
	// StableAfter is how long a worker must have served, counted from when
	// it became ready, for the backoff to start over at its exit (default
	// 10s).
	StableAfter time.Duration
	// ShutdownTimeout bounds the stop of a worker scaled away, recycled or
	// replaced, and of the remaining workers after Run gives up on a crash
	// loop (default 10s). In every stop, HandlerShare of it is kept for the
	// workers' stop handlers: a worker still busy then gets the stop signal.
	ShutdownTimeout time.Duration
	// Guard holds each worker's process group to a memory budget (default
	// off).
	Guard Guard
	// SpareSlot says the memory leaves room for one more worker, so a
	// recycled worker's replacement may start before it stops. Without it,
	// a recycled worker is stopped first. Reloads always start the
	// replacement first, so that new code that fails to start leaves the
	// old workers serving.
	SpareSlot bool
	// SampleInterval is how often worker memory is sampled for status, and
	// the Guard's default Every (default 1s).
	SampleInterval time.Duration
	// SocketDir, when set, makes workers listen on Unix sockets in this
	// directory instead of loopback TCP ports: PORT is then the socket's
	// path, which Node's server.listen(process.env.PORT) accepts.
	SocketDir string
	// InheritSockets, with SocketDir, keeps PORT a loopback port and gives
	// each worker instead a Unix socket that percore binds in SocketDir and
	// passes as descriptor 3 (EnvUpstreamFD): the runtime's preload makes
	// the app's listen(PORT) listen on it, and the proxy reaches the worker
	// there. percore keeps no copy, so the socket goes with its worker and
	// a dial to a gone worker is refused at once. A worker whose process
	// group listens on PORT instead (the preload could not take the
	// socket) is reached over TCP, and says so in the log.
	InheritSockets bool
	// Cgroup, when set, is the memory cgroup whose limit holds percore and
	// its workers. The Guard reads it after each round of samples, acts on
	// its biggest worker when it nears its limit, and samples every worker
	// at once on its alarms, which it asks for at the levels where a worker
	// may have grown to the RSS at which it is recycled. Without it, each
	// worker is only sampled.
	Cgroup CgroupMemory
	// OOM, when set, counts kernel OOM kills in percore's memory cgroup, so
	// a worker killed by SIGKILL can be told to be an OOM victim: each kill
	// counted is matched with one SIGKILL exit that percore did not cause.
	OOM OOMCounter
	// MinUptime is how long a worker must serve, counted from when it
	// became ready (not from its start, which may take long), for its start
	// to count as good: a worker that exits sooner counts as a failed start
	// towards MaxBootFailures (default 1s).
	MinUptime time.Duration
	// Probation is how long a reload's replacement serves beside the worker
	// it replaces before that one retires. A replacement that exits within
	// it fails the reload: the old worker serves on and the reload stops.
	// Zero turns it off: the old worker retires as soon as its replacement
	// is ready. Recycling has no probation: its replacement runs the code
	// that already serves.
	Probation time.Duration
	// Sockets, when set, runs the workers in direct mode: each worker
	// inherits its slot's public listening socket as descriptor 3 (and,
	// where its runtime takes passed connections, a channel as descriptor
	// 4) and a preload makes the app serve it (see DirectEnv). PORT is then a port
	// nobody may listen on, and the worker is ready once it listens on its
	// private health address, the one the health checks reach.
	Sockets Sockets
	// Ping gives each worker a private address in EnvPing where the
	// runtime's preload answers health checks (a Unix socket in SocketDir
	// when set, else a loopback port); WorkerStatus.Ping shows it.
	Ping bool
	// RefusedExitCode, when not 0, is the exit code with which the
	// runtime's preload refuses an app that cannot run as started (in
	// direct mode: the cluster module, a second listen on PORT). A worker
	// that exits with it before it is ready is refused: Run gives up at
	// once, as on a crash loop, unless another slot serves.
	RefusedExitCode int
}

// Sockets hands out the public listening socket of each slot in direct
// mode. The sockets stay the Sockets' own: a worker gets a copy.
type Sockets interface {
	// File returns slot's socket, opening it the first time.
	File(slot int) (*os.File, error)
	// Release closes slot's socket once the slot is scaled away and its
	// last worker is gone. Which workers serve a socket, the Sockets learn
	// as the Router does.
	Release(slot int)
	// Channel opens, for the worker with key, the channel over which the
	// Sockets pass it connections queued for a slot without a serving
	// worker: the worker's end, which it gets as descriptor fd (the Sockets
	// keep no copy of it; the supervisor closes its own once the worker
	// started), and the variables that tell the runtime. No file: the
	// runtime takes no passed connection.
	Channel(key uint64, fd int) (*os.File, []string, error)
}

// OOMCounter counts the kernel's OOM kills in a memory cgroup.
type OOMCounter interface {
	Count() (uint64, error)
}

// Defaults for Config fields left zero.
const (
	DefaultReadyTimeout    = 30 * time.Second
	DefaultMaxBootFailures = 5
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 10 * time.Second
	DefaultStableAfter     = 10 * time.Second
	DefaultMinUptime       = time.Second
	// HurryGrace is how long a fast stop waits between the stop signal and
	// SIGKILL.
	HurryGrace = 2 * time.Second
)

func (c *Config) setDefaults() error {
	if len(c.Command) == 0 {
		return errors.New("no command to run")
	}
	if c.Workers < 1 {
		return fmt.Errorf("worker count %d: at least 1 worker is needed", c.Workers)
	}
	if c.Launcher == nil || c.Router == nil || c.Output == nil {
		return errors.New("launcher, router and output are required")
	}
	if c.InheritSockets && (c.SocketDir == "" || c.Sockets != nil) {
		return errors.New("inherited worker sockets need a socket directory, and no public sockets (direct mode)")
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	setDuration(&c.ReadyTimeout, DefaultReadyTimeout)
	setDuration(&c.BackoffMin, DefaultBackoffMin)
	setDuration(&c.BackoffMax, DefaultBackoffMax)
	setDuration(&c.StableAfter, DefaultStableAfter)
	setDuration(&c.MinUptime, DefaultMinUptime)
	setDuration(&c.ShutdownTimeout, 10*time.Second)
	setDuration(&c.SampleInterval, time.Second)
	setDuration(&c.Guard.Every, c.SampleInterval)
	c.Guard.setDefaults()
	if c.StopSignal == 0 {
		c.StopSignal = syscall.SIGTERM
	}
	if c.MaxBootFailures < 1 {
		c.MaxBootFailures = DefaultMaxBootFailures
	}
	return nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
