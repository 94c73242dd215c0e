package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/percore/percore/cmd/percore/internal/earlysignal"
	"github.com/percore/percore/internal/testutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// percoreBin is the binary built once for the integration tests.
var percoreBin string

func TestMain(m *testing.M) {
	if os.Getenv(asPercoreVar) == "1" {
		// Started by launchBin as percore with the test runtimes.
		os.Exit(runWith(testRuntimes(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	earlysignal.Release() // the test binary is not percore: Ctrl-C ends it
	dir, err := os.MkdirTemp("", "percore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	percoreBin = filepath.Join(dir, "percore")
	build := exec.Command("go", "build", "-o", percoreBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build percore:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needNode skips a test when node is not installed.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
}

// instance is one running percore binary.
type instance struct {
	t      *testing.T
	cmd    *exec.Cmd
	mark   string
	addr   string // the proxy's address
	admin  string // the admin address, "" when off
	stdout *lockedBuffer
	logs   *lockedBuffer
	lines  chan map[string]any
	mu     sync.Mutex
	seen   []map[string]any // every JSON log line so far
	exited chan struct{}
	err    error
}

// lockedBuffer collects output written from many goroutines.
type lockedBuffer = testutil.LockedBuffer

// start runs percore with args (flags, then "--" and the command) on free
// loopback ports and waits until its first worker is ready.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	in := launch(t, args...)
	in.waitLog("worker ready", 30*time.Second)
	return in
}

// launch runs percore without waiting for workers.
func launch(t *testing.T, args ...string) *instance {
	t.Helper()
	return launchVia(t, nil, args...)
}

// launchVia runs percore through a wrapper command (which must exec
// percore's argv, given as its trailing arguments) without waiting for workers.
func launchVia(t *testing.T, wrapper []string, args ...string) *instance {
	t.Helper()
	return launchBin(t, percoreBin, nil, wrapper, args...)
}

// launchBin is launchVia for the percore binary bin, with the variables
// env added to its environment.
func launchBin(t *testing.T, bin string, env, wrapper []string, args ...string) *instance {
	t.Helper()
	full := append([]string{bin}, testFlags(args)...)
	full = append(append([]string(nil), wrapper...), full...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return startInstance(t, cmd, args)
}

// testFlags are percore's flags in tests (ephemeral ports, JSON logs)
// followed by args.
func testFlags(args []string) []string {
	return append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"}, args...)
}

// startInstance starts cmd, which runs percore with args, marked so that
// its leftovers can be found, and returns once percore said where it
// listens.
func startInstance(t *testing.T, cmd *exec.Cmd, args []string) *instance {
	t.Helper()
	mark := fmt.Sprintf("percore-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd.Env = append(cmd.Env, "PERCORE_TEST_MARK="+mark)
	in := &instance{t: t, cmd: cmd, mark: mark, stdout: &lockedBuffer{}, logs: &lockedBuffer{},
		lines: make(chan map[string]any, 1024), exited: make(chan struct{})}
	cmd.Stdout = in.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go in.readLogs(stderr)
	t.Cleanup(in.cleanup)
	if slices.Contains(args, "direct") {
		in.addr = in.logField("direct mode", "addr")
	} else {
		in.addr = in.logField("proxy listening", "addr")
	}
	in.admin = in.logField("admin listening", "addr")
	return in
}

// readLogs keeps stderr and parses percore's JSON log lines; it then waits
// for the process.
func (in *instance) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		in.logs.Write([]byte(line + "\n"))
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["@message"] != nil {
			in.mu.Lock()
			in.seen = append(in.seen, m)
			in.mu.Unlock()
			select {
			case in.lines <- m:
			default:
			}
		}
	}
	in.err = in.cmd.Wait()
	close(in.lines)
	close(in.exited)
}

// logField waits for a log line whose message starts with msg and returns field.
func (in *instance) logField(msg, field string) string {
	m := in.waitLog(msg, 20*time.Second)
	v, _ := m[field].(string)
	return v
}

func (in *instance) waitLog(msg string, timeout time.Duration) map[string]any {
	in.t.Helper()
	deadline := time.After(testutil.Scaled(timeout))
	for {
		select {
		case m, ok := <-in.lines:
			if !ok {
				in.t.Fatalf("percore exited before logging %q; logs:\n%s", msg, in.logs.String())
			}
			if s, _ := m["@message"].(string); strings.HasPrefix(s, msg) {
				return m
			}
		case <-deadline:
			in.t.Fatalf("no log line %q within %s; logs:\n%s", msg, timeout, in.logs.String())
		}
	}
}

// findLog returns the first log line so far, or to come within timeout,
// whose message starts with msg. Unlike waitLog it consumes nothing.
func (in *instance) findLog(msg string, timeout time.Duration) map[string]any {
	in.t.Helper()
	deadline := time.Now().Add(testutil.Scaled(timeout))
	for {
		in.mu.Lock()
		for _, m := range in.seen {
			if s, _ := m["@message"].(string); strings.HasPrefix(s, msg) {
				in.mu.Unlock()
				return m
			}
		}
		in.mu.Unlock()
		if time.Now().After(deadline) {
			in.t.Fatalf("no log line %q within %s; logs:\n%s", msg, timeout, in.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to percore.
func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatalf("signal percore: %v", err)
	}
}

// wait waits for percore to exit and returns its exit code.
func (in *instance) wait(timeout time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(timeout):
		in.t.Fatalf("percore did not exit within %s; logs:\n%s", timeout, in.logs.String())
	}
	if in.err == nil {
		return 0
	}
	if ee, ok := in.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	in.t.Fatalf("wait for percore: %v", in.err)
	return -1
}

// cleanup stops percore gracefully (SIGKILL after 20s) and fails the test
// if a process that percore started outlives it.
func (in *instance) cleanup() {
	testutil.StopPercore(in.t, in.cmd.Process, in.exited, "PERCORE_TEST_MARK", in.mark)
}

// markedProcesses lists live processes whose environment holds mark. Every
// process percore starts inherits it.
func isZombie(pid int) bool { return testutil.IsZombie(pid) }

// client is a short-timeout HTTP client for the tests.
var client = &http.Client{Timeout: 20 * time.Second}

// getJSON GETs url and decodes a JSON answer; it fails on a non-200.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %q: %v", url, body, err)
	}
}

func appJS() string { return filepath.Join("testdata", "app.js") }
