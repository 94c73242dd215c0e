package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// worker is one process serving in a slot. Its fields are set before it is
// shared and never change, except through the owning slot, and except its
// stop record, which the goroutine that stops it writes, and sigkilled,
// which whatever sends its group SIGKILL sets.
type worker struct {
	key        uint64
	slot       int
	port       int
	sock       string // the Unix socket path, when workers listen on sockets
	inherit    bool   // sock is a socket percore bound and passed as descriptor 3; PORT is port
	appPort    int    // direct mode: the PORT the app's listen call names, redirected to its socket
	publicPort int    // direct mode: the port of its public socket; 0 when unknown
	ping       string // the ping address in EnvPing: a loopback port, or a Unix socket's path; "" for none
	pid        int
	started    time.Time
	exit       <-chan Exit   // read only by watchExit
	gone       chan struct{} // closed once the process has exited
	tail       *Tail
	output     <-chan struct{} // closed once the output pipes ended and tail holds the last lines
	log        hclog.Logger
	fam        *family // the processes it started

	sigkilled atomic.Bool // percore sent its group SIGKILL: its SIGKILL exit is no OOM kill
	overTCP   atomic.Bool // inherit, but the worker listens on port instead: reached over TCP

	mu      sync.Mutex // protects stopRec
	stopRec StopRecord // what a stop did to it
}

// stopRecord returns what a stop did to the worker so far.
func (w *worker) stopRecord() StopRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopRec
}

func (w *worker) setStopRecord(r StopRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopRec = r
}

// signal sends sig to the worker's process group. A SIGKILL is noted
// first, so that the exit it causes is never taken for the kernel's OOM
// kill.
func (w *worker) signal(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		w.sigkilled.Store(true)
	}
	return signalGroup(w.pid, sig)
}

// outputDrainWait bounds the wait for a gone worker's last output. Its pipes
// end when every process holding them is gone, which a grandchild may delay
// for good.
const outputDrainWait = 300 * time.Millisecond

// awaitOutput waits, up to outputDrainWait, until the pipe readers have
// read all a gone worker wrote, so that its tail holds its last lines: the
// exit of a process can be seen before the readers drain its pipes.
func (w *worker) awaitOutput() {
	if w.output == nil { // no pipes of percore's own
		return
	}
	t := time.NewTimer(outputDrainWait)
	defer t.Stop()
	select {
	case <-w.output:
	case <-t.C:
	}
}

// addr is where the proxy reaches the worker: 127.0.0.1:port, or the path
// of its Unix socket.
func (w *worker) addr() string {
	if w.onSocket() {
		return w.sock
	}
	return "127.0.0.1:" + strconv.Itoa(w.port)
}

// onSocket reports whether the proxy reaches the worker on its Unix socket.
func (w *worker) onSocket() bool {
	return w.sock != "" && !w.overTCP.Load()
}

// EnvPing names the variable that gives a worker its private ping address:
// a loopback port, or the path of a Unix socket. The runtime's preload
// answers "pong\n" there to "ping\n" from the worker's event loop, for
// percore's health checks.
const EnvPing = "PERCORE_PING"

// pingAddr is where the health checks ping the worker: 127.0.0.1:port,
// the path of a Unix socket, or "" when it has no ping address.
func (w *worker) pingAddr() string {
	if w.ping == "" || strings.HasPrefix(w.ping, "/") {
		return w.ping
	}
	return "127.0.0.1:" + w.ping
}

// listening reports whether the worker's own process group listens where
// it should.
func (w *worker) listening() (bool, error) {
	if w.inherit {
		return w.listeningInherited()
	}
	if w.sock != "" {
		return listensOnUnix(w.pid, w.sock)
	}
	return listensOn(w.pid, w.port)
}

// listeningInherited reports whether a worker given a Unix socket listens:
// on that socket, or on PORT itself when the preload could not take the
// socket (a wrapper did not pass descriptor 3 on, the server on PORT does
// not go through node's net module, the app's cluster module serves it).
// The worker is then reached over TCP.
func (w *worker) listeningInherited() (bool, error) {
	ok, err := listensOn(w.pid, w.port)
	if err != nil || ok {
		if ok {
			w.overTCP.Store(true)
			w.log.Info("worker listens on its port, not on the Unix socket percore passed it, so it is reached "+
				"over TCP: a wrapper did not pass descriptor 3 on, or the server on PORT does not use node's net "+
				"module (--upstream tcp says so and keeps this quiet)", "port", w.port)
		}
		return ok, err
	}
	return listensOnUnix(w.pid, w.sock)
}

// warnExposed warns when a worker of proxy mode listens on its port beyond
// loopback: many frameworks bind every interface whatever HOST says, and
// whoever reaches the host on that port then skips percore's request checks
// and its forwarding-header stripping. The preloads of node, deno run and
// bun prevent it; other commands are checked here.
func (w *worker) warnExposed() {
	if w.onSocket() || w.appPort != 0 {
		return
	}
	if addrs := exposedOn(w.pid, w.port); len(addrs) > 0 {
		w.log.Warn("worker listens beyond loopback: clients that reach this host on that port skip percore; "+
			"make the app listen on HOST (127.0.0.1)", "listening", strings.Join(addrs, ", "))
	}
}

// forget removes what a gone worker leaves behind: its socket file.
func (w *worker) forget() {
	if w.sock != "" {
		_ = os.Remove(w.sock) // gone already when the app closed its server
	}
	if strings.HasPrefix(w.ping, "/") {
		_ = os.Remove(w.ping)
	}
}

// errNotReady says a worker did not listen on its port in time.
var errNotReady = errors.New("did not listen on its port in time")

// errGone says a worker exited while it was waited for.
var errGone = errors.New("worker exited")

// spawn starts one worker for slot on a fresh loopback port.
func (s *Supervisor) spawn(slot int) (*worker, error) {
	w := &worker{key: s.nextKey.Add(1), slot: slot, tail: &Tail{}, gone: make(chan struct{})}
	port := "0"
	if s.cfg.SocketDir != "" && !s.cfg.InheritSockets {
		w.sock = filepath.Join(s.cfg.SocketDir, "worker-"+strconv.FormatUint(w.key, 10)+".sock")
		port = w.sock
	} else {
		var err error
		if w.port, err = freePort(); err != nil {
			return nil, err
		}
		port = strconv.Itoa(w.port)
	}
	argv, env := s.cfg.Command, s.workerEnv(slot, port)
	if s.cfg.Ping {
		if err := s.pingSetup(w); err != nil {
			return nil, err
		}
	}
	var public, channel *os.File
	if s.cfg.Sockets != nil {
		var vars []string
		var err error
		if public, vars, err = s.directSetup(w, port); err != nil {
			return nil, err
		}
		env = append(s.workerEnv(slot, strconv.Itoa(w.appPort)), vars...)
		if channel, vars, err = s.directChannel(w); err != nil {
			return nil, err
		}
		if channel != nil {
			defer channel.Close() // the worker holds its own copy
			env = append(env, vars...)
		}
	}
	if w.ping != "" {
		env = append(env, EnvPing+"="+w.ping)
	}
	if s.cfg.Prepare != nil {
		var err error
		appPort := w.port
		if public != nil {
			appPort = w.appPort
		}
		if argv, env, err = s.cfg.Prepare(argv, env, appPort); err != nil {
			return nil, fmt.Errorf("prepare worker %d: %w", slot, err)
		}
	}
	extra := public
	if s.cfg.InheritSockets {
		f, vars, err := s.upstreamSetup(w)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the worker's copy is the socket's only one
		extra, env = f, append(env, vars...)
	}
	key := s.fams.keyFor(w.key)
	if err := s.startProcess(w, argv, withWorkerKey(env, key), extra, channel); err != nil {
		if w.inherit {
			_ = os.Remove(w.sock)
		}
		return nil, fmt.Errorf("start worker %d (%s): %w", slot, argv[0], err)
	}
	w.fam = s.fams.add(w.pid, key)
	w.log = s.log.With("worker", slot, "pid", w.pid)
	return w, nil
}

// pingSetup gives w its ping address: a Unix socket beside the workers'
// own when they listen on sockets, else a loopback port.
func (s *Supervisor) pingSetup(w *worker) error {
	if s.cfg.SocketDir != "" {
		w.ping = filepath.Join(s.cfg.SocketDir, "worker-"+strconv.FormatUint(w.key, 10)+".ping")
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	w.ping = strconv.Itoa(port)
	return nil
}

// startProcess starts the worker's process; extra, when set, is the
// socket it inherits as descriptor 3: its public socket (direct mode), or
// its Unix socket (InheritSockets); channel, when set, its end of the
// channel that passes it connections in direct mode (descriptor 4,
// channelFD).
func (s *Supervisor) startProcess(w *worker, argv, env []string, extra, channel *os.File) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	stdout, stderr, output, err := s.cfg.Output.attach(w.slot, w.tail)
	if err != nil {
		return err
	}
	// The child holds its own copies of the write ends; ours must go, so
	// that the readers see the end of the pipes when the worker exits.
	defer stdout.Close()
	defer stderr.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, stdout, stderr
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra} // descriptor 3: directFD, upstreamFD
		if channel != nil {
			cmd.ExtraFiles = append(cmd.ExtraFiles, channel) // descriptor 4, channelFD
		}
	}
	pid, exit, err := s.cfg.Launcher.Start(cmd)
	if err != nil {
		return err
	}
	w.pid, w.exit, w.started, w.output = pid, exit, time.Now(), output
	return nil
}

// workerEnv is the environment a worker in slot starts with.
func (s *Supervisor) workerEnv(slot int, port string) []string {
	return WorkerEnv(s.cfg.Env, slot, port, s.workerCount())
}

// WorkerEnv returns base with the variables percore gives a worker: PORT and
// HOST say where to listen, PERCORE_WORKER_ID and NODE_APP_INSTANCE (PM2's
// name) the worker's id, PERCORE_WORKER_COUNT how many workers run.
func WorkerEnv(base []string, slot int, port string, count int) []string {
	id := strconv.Itoa(slot)
	env := make([]string, 0, len(base)+5)
	env = append(env, base...)
	return append(env,
		"PORT="+port,
		"HOST=127.0.0.1",
		"PERCORE_WORKER_ID="+id,
		"NODE_APP_INSTANCE="+id,
		"PERCORE_WORKER_COUNT="+strconv.Itoa(count),
	)
}

// awaitReady polls until the worker listens on its port. It returns nil when
// it does, errNotReady at the ready timeout (in direct mode errNoSocket, or
// an *ownListenerError as soon as a process of the worker listens on PORT
// itself), a *shortageError when percore could not check for lack of
// descriptors, or errGone when the worker exited first.
func (s *Supervisor) awaitReady(w *worker) error {
	deadline := time.NewTimer(s.cfg.ReadyTimeout)
	defer deadline.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	start := time.Now()
	var lastErr error
	for {
		select {
		case <-w.gone:
			return errGone
		case <-deadline.C:
			if outOfResources(lastErr) {
				return &shortageError{err: lastErr}
			}
			if w.appPort != 0 {
				return errNoSocket
			}
			return errNotReady
		case <-poll.C:
		}
		if err := w.directCheck(); err != nil {
			return err
		}
		ok, err := w.listening()
		lastErr = err
		if err != nil {
			w.log.Debug("readiness check", "error", err)
		}
		if ok {
			w.warnExposed()
			return nil
		}
		poll.Reset(readyPollDelay(time.Since(start)))
	}
}

// readyPollDelay is the pause between two readiness checks of a worker that
// has been starting for elapsed. A proxy cannot answer before its first
// worker is seen listening, so the first second is checked every few
// milliseconds; a slower start is checked less often, since each check reads
// the machine's socket table.
func readyPollDelay(elapsed time.Duration) time.Duration {
	if elapsed < time.Second {
		return 3 * time.Millisecond
	}
	return 20 * time.Millisecond
}
