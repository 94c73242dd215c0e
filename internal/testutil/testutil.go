// Package testutil holds what percore's test suites share: a buffer that
// many goroutines write to, the /proc checks that no process a test
// started outlives it, and memory cgroups to run percore in. It is imported
// by tests only.
package testutil

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LockedBuffer is a bytes.Buffer that is safe for concurrent use.
type LockedBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// MarkedProcesses lists the live processes whose environment holds
// key=mark; a test sets it on the process it starts, and every descendant
// inherits it. Processes on their way out get up to 2 s to go.
func MarkedProcesses(key, mark string) []int {
	needle := []byte(key + "=" + mark + "\x00")
	deadline := time.Now().Add(2 * time.Second)
	for {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err == nil && bytes.Contains(env, needle) && !IsZombie(pid) {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// IsZombie reports whether pid is gone or a zombie.
func IsZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && len(data) > i+2 && data[i+2] == 'Z'
}

// StopPercore ends a percore a test started: SIGTERM, then after 20s an
// error and SIGKILL to its process group. exited is closed once the process
// has been waited for. It then fails t if a process marked with key=mark
// outlived percore, and kills those.
func StopPercore(t testing.TB, p *os.Process, exited <-chan struct{}, key, mark string) {
	select {
	case <-exited:
	default:
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Errorf("percore did not stop within 20s of SIGTERM")
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	if pids := MarkedProcesses(key, mark); len(pids) > 0 {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("processes started by percore outlived it: %v", pids)
	}
}
