package main

import (
	"bytes"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyOutput collects what a program writes to its terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until ok holds for the output so far.
func (o *ptyOutput) waitFor(t *testing.T, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok(o.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 15s; output: %q", what, o.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTopInTerminal runs percore top in a pseudo-terminal against a percore
// with two node workers: it redraws the table in place on the alternate
// screen with rates and latencies, and q (or Ctrl-C, a key in raw mode)
// ends it with the terminal as it was.
func TestTopInTerminal(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	pids := waitReady(t, "http://"+in.admin+"/status", 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		requestLoop("http://"+in.addr+"/", stop)
	}()
	defer func() { close(stop); wg.Wait() }()

	for _, key := range []string{"q", "\x03"} {
		cmd := exec.Command(percoreBin, "top", "--admin", in.admin)
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 140})
		if err != nil {
			t.Fatalf("start percore top in a pty: %v", err)
		}
		out := &ptyOutput{}
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			io.Copy(out, tty) // ends with EIO once percore top exits
		}()
		// Two refreshes after the first frame, the last with a rate.
		out.waitFor(t, "three frames", func(s string) bool {
			frames := strings.Split(s, homeCursor)
			return len(frames) >= 4 && strings.Contains(frames[len(frames)-1], "req/s")
		})
		frames := strings.Split(out.String(), homeCursor)
		last := frames[len(frames)-1]
		for _, want := range []string{"REQ/S", "P50", "P99", strconv.Itoa(pids[0]), strconv.Itoa(pids[1]), "2/2 workers ready"} {
			if !strings.Contains(last, want) {
				t.Errorf("a frame lacks %q:\n%s", want, last)
			}
		}
		if !strings.HasPrefix(out.String(), enterScreen) {
			t.Errorf("percore top did not switch to the alternate screen: %q", out.String()[:min(40, len(out.String()))])
		}
		if _, err := tty.Write([]byte(key)); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("percore top after %q: %v", key, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("percore top did not quit on %q", key)
		}
		<-copied
		tty.Close()
		if !strings.HasSuffix(out.String(), leaveScreen) {
			t.Errorf("after %q percore top did not leave the screen as it was; output ends %q", key, tail(out.String(), 40))
		}
	}
}

// TestTopPlainWhenNotATerminal checks that with stdout in a pipe percore top
// prints one table after another with no terminal control, and stops on
// SIGINT with status 0.
func TestTopPlainWhenNotATerminal(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS())
	cmd := exec.Command(percoreBin, "top", "--admin", in.admin)
	out := &ptyOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "two tables", func(s string) bool { return strings.Count(s, "REQ/S") >= 2 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("percore top after SIGINT: %v", err)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("percore top wrote terminal control to a pipe: %q", out.String())
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
