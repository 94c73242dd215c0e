//go:build linux

package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Reaper is the Launcher for the percore binary: it is the only code in the
// process that waits for children. It reaps every child with wait4(-1), hands
// the status of each worker to the channel Start returned, and reaps orphans
// that the kernel reparents to percore (as PID 1, or as a child subreaper).
//
// Never use a Reaper inside a test binary or beside exec.Cmd.Wait: it would
// steal their exit statuses.
type Reaper struct {
	log   hclog.Logger
	spawn *spawner
	sigs  chan os.Signal
	quit  chan struct{}
	done  chan struct{}

	mu      sync.Mutex // protects waiting; held across fork+register and around each wait4
	waiting map[int]chan Exit
}

// NewReaper starts the reaper. When percore is not PID 1 it first makes
// itself a child subreaper, so orphaned grandchildren are reparented to it
// rather than to the machine's init. Subreaper reports whether that happened.
func NewReaper(log hclog.Logger) (*Reaper, error) {
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	r := &Reaper{
		log:     log,
		spawn:   newSpawner(),
		sigs:    make(chan os.Signal, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		waiting: make(map[int]chan Exit),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r, nil
}

// Start implements Launcher.
func (r *Reaper) Start(cmd *exec.Cmd) (int, <-chan Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.spawn.start(cmd); err != nil {
		return 0, nil, err
	}
	pid := cmd.Process.Pid
	ch := make(chan Exit, 1)
	r.waiting[pid] = ch
	// The reaper, not os.Process, waits for this child; releasing the
	// handle closes its pidfd.
	if err := cmd.Process.Release(); err != nil {
		r.log.Debug("release process handle", "pid", pid, "error", err)
	}
	return pid, ch, nil
}

// Close kills every process still running below percore, then stops
// reaping and the spawning thread. Call it last, after every worker has
// exited.
func (r *Reaper) Close() {
	r.endDescendants()
	signal.Stop(r.sigs)
	close(r.quit)
	<-r.done
	r.spawn.close()
}

// endDescendants kills what still runs below percore once every worker
// and the processes the supervisor found to be theirs have ended: a
// process that cleared its environment and double-forked between two
// samples, or one that survived its family's end. They get SIGKILL, not the
// stop signal: the stop's budget is spent, and none of them may outlive
// percore. The loop reaps them as they end; what they started meanwhile is
// looked for again, a bounded number of times.
func (r *Reaper) endDescendants() {
	self := os.Getpid()
	ended := map[int]bool{}
	for round := 0; round < leftoverKillRounds; round++ {
		left := descendantsOf(self, 16*maxTree)
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			ended[p.pid] = true
			if _, err := signalProc(p, syscall.SIGKILL); err != nil {
				r.log.Warn("cannot kill a process left below percore", "process", p.pid, "error", err)
			}
		}
		awaitEnd(left, time.Now().Add(time.Second))
	}
	if len(ended) > 0 {
		r.log.Warn("processes still ran below percore after its workers stopped: killed them", "processes", len(ended))
	}
}

func (r *Reaper) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.sigs:
			r.reapAll()
		case <-r.quit:
			r.reapAll()
			return
		}
	}
}

// reapAll collects every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for many children.
func (r *Reaper) reapAll() {
	for {
		pid, exit, ch, ok := r.reapOne()
		if !ok {
			return
		}
		if ch != nil {
			ch <- exit
			continue
		}
		r.log.Debug("reaped orphan", "pid", pid, "exit", exit.String())
	}
}

func (r *Reaper) reapOne() (int, Exit, chan Exit, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ws unix.WaitStatus
	pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
	if err == unix.EINTR {
		return 0, Exit{}, nil, true
	}
	if err != nil || pid <= 0 {
		return 0, Exit{}, nil, false
	}
	ch := r.waiting[pid]
	delete(r.waiting, pid)
	return pid, exitFromWaitStatus(syscall.WaitStatus(ws)), ch, true
}
