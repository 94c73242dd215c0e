package supervisor

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// Launcher starts worker processes and reports each one's exit exactly once.
// There is exactly one waiter per process: either a Waiter goroutine calling
// Wait, or the Reaper owning wait4 for the whole program.
type Launcher interface {
	// Start starts cmd and returns its pid and a channel that receives its
	// exit once. cmd's standard streams must be *os.File values (or nil) so
	// that no copying goroutine depends on Wait.
	Start(cmd *exec.Cmd) (int, <-chan Exit, error)
}

// spawner starts processes from one OS thread that lives as long as the
// spawner. The parent-death signal of a Linux child is tied to the thread that
// forked it, not to the process (golang/go#27505): starting every worker from
// a thread that never exits makes that signal fire only when percore dies.
type spawner struct {
	reqs chan spawnRequest
	done chan struct{}
}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest), done: make(chan struct{})}
	go s.loop()
	return s
}

// loop runs on a locked OS thread. It never unlocks: when close ends the loop,
// the thread exits with it, which is why close must come after every child
// started here has been stopped.
func (s *spawner) loop() {
	runtime.LockOSThread()
	defer close(s.done)
	for req := range s.reqs {
		req.errc <- req.cmd.Start()
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = workerSysProcAttr()
	}
	errc := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// Waiter is a Launcher that waits for each process in a goroutine of its own.
// It is the launcher for programs that do not own every child, such as tests;
// percore itself uses the Reaper.
type Waiter struct {
	spawn *spawner
}

// NewWaiter returns a Waiter. Close it after every process it started is gone.
func NewWaiter() *Waiter {
	return &Waiter{spawn: newSpawner()}
}

// Start implements Launcher.
func (w *Waiter) Start(cmd *exec.Cmd) (int, <-chan Exit, error) {
	if err := w.spawn.start(cmd); err != nil {
		return 0, nil, err
	}
	ch := make(chan Exit, 1)
	go waitProcess(cmd, ch)
	return cmd.Process.Pid, ch, nil
}

// Close stops the spawning thread.
func (w *Waiter) Close() { w.spawn.close() }

// waitProcess is the one waiter of a process started by a Waiter.
func waitProcess(cmd *exec.Cmd, ch chan<- Exit) {
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		ch <- Exit{}
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			ch <- exitFromWaitStatus(ws)
			return
		}
		ch <- Exit{Code: ee.ExitCode()}
	default:
		ch <- Exit{Code: -1}
	}
}

// signalGroup sends sig to the process group pgid. A group that is already
// gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return fmt.Errorf("signal group %d: invalid process group", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal group %d with %s: %w", pgid, sig, err)
	}
	return nil
}
