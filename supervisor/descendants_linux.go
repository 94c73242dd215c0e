//go:build linux

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procfs is the process table as /proc shows it.
type procfs struct{}

func (procfs) proc(pid int) (proc, bool) { return readProc(pid) }

func (procfs) children(pid int) []int { return appendChildren(nil, pid) }

func (procfs) workerKey(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	return workerKeyIn(data)
}

// readProc reads /proc/pid/stat.
func readProc(pid int) (proc, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	return parseStat(pid, data)
}

// openProc returns a pidfd of p, or -1 when p has ended (its pid may name
// another process now). The pidfd is opened before the start time is
// compared: if the pid still names p after the open, the pidfd is p's, and
// a signal sent through it can reach no other process.
func openProc(p proc) (int, error) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("open process %d: %w", p.pid, err)
	}
	if !stillRuns(p) {
		unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// stillRuns reports whether p runs: its pid names it, and it is no zombie.
func stillRuns(p proc) bool {
	q, ok := readProc(p.pid)
	return ok && q.start == p.start && q.state != 'Z'
}

// noPidfd reports whether err says that pidfds are not to be had here: a
// kernel before 5.3, or a seccomp filter that refuses them.
func noPidfd(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)
}

// signalProc sends sig to p unless p has ended. It reports whether p was
// there to receive it. Without pidfds it compares the start time and then
// signals the pid, which leaves a window of a few microseconds.
func signalProc(p proc, sig syscall.Signal) (bool, error) {
	fd, err := openProc(p)
	if noPidfd(err) {
		if !stillRuns(p) {
			return false, nil
		}
		err = syscall.Kill(p.pid, sig)
	} else if err == nil && fd >= 0 {
		err = unix.PidfdSendSignal(fd, sig, nil, 0)
		unix.Close(fd)
	} else if err == nil {
		return false, nil
	}
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("signal process %d with %s: %w", p.pid, sig, err)
	}
	return true, nil
}

// awaitEnd waits until every process of ps has ended, or until deadline,
// and returns those still running. A pidfd becomes readable when its
// process ends, whoever its parent is; without pidfds it waits until the
// deadline.
func awaitEnd(ps []proc, deadline time.Time) []proc {
	var ws waitSet
	for _, p := range ps {
		ws.add(p)
	}
	defer ws.close()
	ws.wait(deadline)
	return ws.running()
}

// waitSet is a set of processes to wait for.
type waitSet struct {
	procs []proc
	fds   []unix.PollFd // Fd -1 once ended, or when it could not be opened
	blind []bool        // no pidfd: checked at the deadline
	ended []bool
}

func (ws *waitSet) add(p proc) {
	fd, err := openProc(p)
	switch {
	case err != nil:
		ws.procs, ws.blind, ws.ended = append(ws.procs, p), append(ws.blind, true), append(ws.ended, false)
		ws.fds = append(ws.fds, unix.PollFd{Fd: -1})
	case fd >= 0:
		ws.procs, ws.blind, ws.ended = append(ws.procs, p), append(ws.blind, false), append(ws.ended, false)
		ws.fds = append(ws.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
}

// wait returns once every pidfd is readable, or at deadline.
func (ws *waitSet) wait(deadline time.Time) {
	for {
		open, blind := 0, false
		for i, f := range ws.fds {
			open += btoi(f.Fd >= 0)
			blind = blind || (ws.blind[i] && !ws.ended[i])
		}
		left := time.Until(deadline)
		switch {
		case left <= 0:
			return
		case open == 0 && blind:
			time.Sleep(left) // no event to wait on for these
			return
		case open == 0:
			return
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		if _, err := unix.Poll(ws.fds, ms); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for i := range ws.fds {
			if ws.fds[i].Fd >= 0 && ws.fds[i].Revents != 0 {
				unix.Close(int(ws.fds[i].Fd))
				ws.fds[i].Fd, ws.ended[i] = -1, true
			}
		}
	}
}

// running returns the processes that have not ended.
func (ws *waitSet) running() []proc {
	var out []proc
	for i, p := range ws.procs {
		if !ws.ended[i] && (!ws.blind[i] || stillRuns(p)) {
			out = append(out, p)
		}
	}
	return out
}

func (ws *waitSet) close() {
	for i := range ws.fds {
		if ws.fds[i].Fd >= 0 {
			unix.Close(int(ws.fds[i].Fd))
			ws.fds[i].Fd = -1
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// descendantsOf returns the live processes below pid, up to limit.
func descendantsOf(pid, limit int) []proc {
	var out []proc
	queue := appendChildren(nil, pid)
	for i := 0; i < len(queue) && len(out) < limit; i++ {
		p, ok := readProc(queue[i])
		if !ok {
			continue
		}
		if p.state != 'Z' {
			out = append(out, p)
		}
		queue = appendChildren(queue, p.pid)
	}
	return out
}
