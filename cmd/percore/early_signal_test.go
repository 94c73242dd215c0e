package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// earlyRun is a percore started with the Go runtime's init trace on, so
// that a test can signal it while its packages are still being initialized,
// before main runs.
type earlyRun struct {
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
	err    error
}

// startTraced starts percore with GODEBUG=inittrace=1 and returns once the
// init trace shows os/signal and three more packages initialized: the
// first milliseconds of the process, long before package main (and before
// most of percore's dependencies, which take their time).
func startTraced(t *testing.T, args ...string) *earlyRun {
	t.Helper()
	mark := fmt.Sprintf("percore-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	full := append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--control", "off"}, args...)
	cmd := exec.Command(percoreBin, full...)
	cmd.Env = append(os.Environ(), "PERCORE_TEST_MARK="+mark, "GODEBUG=inittrace=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &earlyRun{cmd: cmd, logs: &lockedBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testutil.StopPercore(t, cmd.Process, r.exited, "PERCORE_TEST_MARK", mark) })
	sc := bufio.NewScanner(pipe)
	after := -1
	for after < 3 && sc.Scan() {
		line := sc.Text()
		r.logs.Write([]byte(line + "\n"))
		switch {
		case strings.HasPrefix(line, "init os/signal "):
			after = 0
		case after >= 0 && strings.HasPrefix(line, "init "):
			after++
		}
	}
	if after < 3 {
		t.Fatalf("no init trace from percore:\n%s", r.logs.String())
	}
	go func() {
		for sc.Scan() {
			r.logs.Write([]byte(sc.Text() + "\n"))
		}
		_, _ = io.Copy(io.Discard, pipe)
		r.err = cmd.Wait()
		close(r.exited)
	}()
	return r
}

// exitCode waits for the process and returns its exit code, or 128+signal
// when a signal ended it.
func (r *earlyRun) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("percore did not exit; output:\n%s", r.logs.String())
	}
	if ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return r.cmd.ProcessState.ExitCode()
}

// TestEarlySIGTERMStopsCleanly: a SIGTERM in the first milliseconds after
// exec ends percore with exit 0 and a log line, not by the signal's default
// action (exit 143 without a word).
func TestEarlySIGTERMStopsCleanly(t *testing.T) {
	needNode(t)
	for i := range 10 {
		r := startTraced(t, "--workers", "1", "--", "node", appJS())
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := r.exitCode(t); code != 0 {
			t.Fatalf("run %d: exit %d after an early SIGTERM, want 0; output:\n%s", i, code, r.logs.String())
		}
		if !strings.Contains(r.logs.String(), "stopped before the workers started") {
			t.Fatalf("run %d: no log line for the early stop; output:\n%s", i, r.logs.String())
		}
	}
}

// TestEarlySIGHUPIsNoted: a SIGHUP that early is noted and percore goes on
// to start; it is not killed (exit 129).
func TestEarlySIGHUPIsNoted(t *testing.T) {
	needNode(t)
	for i := range 3 {
		r := startTraced(t, "--workers", "1", "--", "node", appJS())
		if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(r.logs.String(), "worker ready") {
			select {
			case <-r.exited:
				t.Fatalf("run %d: percore exited (%d) after an early SIGHUP; output:\n%s", i, r.exitCode(t), r.logs.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no worker ready; output:\n%s", i, r.logs.String())
			}
		}
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := r.exitCode(t); code != 0 {
			t.Fatalf("run %d: exit %d, want 0; output:\n%s", i, code, r.logs.String())
		}
	}
}
