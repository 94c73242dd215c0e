package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// Tests that no process a worker started outlives it: detached children
// (a session of their own, out of reach of the group signal), grandchildren
// reparented to percore, children of a worker that exited on its own.

// family is what the descendants app answers: the worker's pid and the pid
// of the process it started outside its group.
type family struct {
	PID   int `json:"pid"`
	Child int `json:"child"`
}

func descendantsJS() string { return filepath.Join("testdata", "descendants.js") }

// startedChild asks the app at path for a process outside its group and
// returns it, with its start time.
func startedChild(t *testing.T, in *instance, path string) (family, uint64) {
	t.Helper()
	var f family
	getJSON(t, "http://"+in.addr+path, &f)
	if f.Child == 0 {
		t.Fatalf("GET %s: the app started no process", path)
	}
	start, ok := startTime(f.Child)
	if !ok {
		t.Fatalf("GET %s: process %d is gone already", path, f.Child)
	}
	if pgid := statField(t, f.Child, 2); pgid == f.PID {
		t.Fatalf("process %d is in the worker's process group", f.Child)
	}
	return f, start
}

// statField returns the i-th field after the command name in /proc/pid/stat
// (0: state, 1: ppid, 2: pgid, 3: sid).
func statField(t *testing.T, pid, i int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	n, _ := strconv.Atoi(f[i])
	return n
}

// startTime returns the start time of a live process: with its pid, it
// tells it from a later process that got the same pid.
func startTime(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil || testutil.IsZombie(pid) {
		return 0, false
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	return n, err == nil
}

// running reports whether the process pid that started at start lives.
func running(pid int, start uint64) bool {
	s, ok := startTime(pid)
	return ok && s == start
}

// waitEnded fails the test unless the process pid that started at start
// ends within timeout.
func waitEnded(t *testing.T, in *instance, what string, pid int, start uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for running(pid, start) {
		if time.Now().After(deadline) {
			t.Fatalf("%s %d still runs %s later; logs:\n%s", what, pid, timeout, in.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopAndCount stops percore with sig and returns the processes it
// started that outlived it.
func stopAndCount(t *testing.T, in *instance, sig syscall.Signal) []int {
	t.Helper()
	in.signal(sig)
	if code := in.wait(30 * time.Second); code != 0 {
		t.Errorf("percore exited %d after %s, want 0", code, sig)
	}
	return testutil.MarkedProcesses("PERCORE_TEST_MARK", in.mark)
}

// foreign starts a process that is not percore's, as the same user, with
// the worker key of the worker pid in its environment: percore must leave
// it alone. It is killed when the test ends.
func foreign(t *testing.T, worker int) (int, uint64) {
	t.Helper()
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(worker) + "/environ")
	cmd := exec.Command("sleep", "300")
	for _, kv := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(kv, "PERCORE_WORKER_KEY=") {
			cmd.Env = append(os.Environ(), kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	start, _ := startTime(cmd.Process.Pid)
	return cmd.Process.Pid, start
}

func TestDetachedChildEndsWithReloadAndStop(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", descendantsJS())
	f, start := startedChild(t, in, "/detached")
	other, otherStart := foreign(t, f.PID)

	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 30*time.Second)
	waitEnded(t, in, "the detached child of a reloaded worker", f.Child, start, 10*time.Second)
	if !running(other, otherStart) {
		t.Errorf("percore ended process %d, which is not its own", other)
	}

	startedChild(t, in, "/detached")
	if left := stopAndCount(t, in, syscall.SIGTERM); len(left) > 0 {
		t.Errorf("processes started by percore outlived its graceful stop: %v", left)
	}
	if !running(other, otherStart) {
		t.Errorf("percore ended process %d, which is not its own", other)
	}
}

func TestMaxMemoryEndsDetachedHolder(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--max-memory", "150", "--", "node", descendantsJS())
	f, start := startedChild(t, in, "/detached?mb=400")
	in.waitLog("worker stopped", 30*time.Second)
	waitEnded(t, in, "the 400 MiB child of a worker above --max-memory", f.Child, start, 10*time.Second)
	if left := stopAndCount(t, in, syscall.SIGTERM); len(left) > 0 {
		t.Errorf("processes started by percore outlived its graceful stop: %v", left)
	}
}

func TestDoubleForkedGrandchildEndsWithWorker(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", descendantsJS())
	f, start := startedChild(t, in, "/doublefork")
	if ppid := statField(t, f.Child, 1); ppid != in.cmd.Process.Pid {
		t.Fatalf("the grandchild's parent is %d, want percore %d (its parent exited)", ppid, in.cmd.Process.Pid)
	}
	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 30*time.Second)
	waitEnded(t, in, "the grandchild of a reloaded worker", f.Child, start, 10*time.Second)
}

func TestChildOfExitedWorkerEnds(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", descendantsJS())
	f, start := startedChild(t, in, "/exit")
	m := in.waitLog("worker left processes behind", 30*time.Second)
	if n, _ := m["processes"].(float64); n != 1 {
		t.Errorf("the log says the worker left %v processes, want 1: %v", m["processes"], m)
	}
	waitEnded(t, in, "the child of a worker that exited", f.Child, start, 10*time.Second)
	if pid, _ := m["pid"].(float64); int(pid) != f.PID {
		t.Errorf("the log names worker pid %v, want %d", m["pid"], f.PID)
	}
}

func TestStopEndsChildrenThatIgnoreTERM(t *testing.T) {
	needNode(t)
	for _, c := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"graceful", syscall.SIGTERM},
		{"fast", syscall.SIGQUIT},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := start(t, "--workers", "2", "--shutdown-timeout", "4s", "--", "node", descendantsJS())
			in.waitLog("worker ready", 30*time.Second)
			startedChild(t, in, "/detached?ignore=1")
			startedChild(t, in, "/doublefork")
			began := time.Now()
			if left := stopAndCount(t, in, c.sig); len(left) > 0 {
				t.Errorf("processes started by percore outlived its %s stop: %v", c.name, left)
			}
			if took := time.Since(began); took > 15*time.Second {
				t.Errorf("the %s stop took %s", c.name, took)
			}
		})
	}
}

// TestStopEndsProcessesNoWorkerClaims: a grandchild without the worker's
// key, reparented to percore before a sample saw it (most runs), is no
// worker's as far as percore can tell; percore's stop still ends it.
func TestStopEndsProcessesNoWorkerClaims(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", descendantsJS())
	f, _ := startedChild(t, in, "/doublefork?hide=1")
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(f.Child) + "/environ")
	if strings.Contains(string(env), "PERCORE_WORKER_KEY=") {
		t.Fatal("the hidden grandchild has the worker key")
	}
	if left := stopAndCount(t, in, syscall.SIGTERM); len(left) > 0 {
		t.Errorf("processes started by percore outlived its graceful stop: %v", left)
	}
}
