//go:build chaos

package chaos

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// spawner starts processes from one OS thread that lives as long as the
// test binary. A child's parent-death signal fires when the thread that
// forked it exits, not the process (golang/go#27505); starting every
// percore from a thread that never exits ties the signal to the binary.
type spawner struct {
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest)}
	go s.loop()
	return s
}

// loop runs on a locked OS thread and never unlocks it: the thread ends
// with the test binary.
func (s *spawner) loop() {
	runtime.LockOSThread()
	for req := range s.reqs {
		req.errc <- req.cmd.Start()
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

// options describes how to run percore.
type options struct {
	// args are percore's flags, then "--" and the worker command.
	args []string
	// env is added to the environment percore and its workers get.
	env []string
	// wrapper runs percore under another command that runs its trailing
	// arguments, such as unshare.
	wrapper []string
	// onStdout, when set, is called for every line percore writes to its
	// stdout (the workers' output), with the time it was read. It runs on
	// the one goroutine that reads stdout, which must keep up: keep it short.
	onStdout func(line []byte, at time.Time)
	// binary is the percore binary to run (default percoreBin).
	binary string
	// direct runs percore with --mode direct: the workers accept on the
	// public address themselves.
	direct bool
	// control is the control socket's path ("": none).
	control string
	// survivorsExpected turns processes that outlive percore from a test
	// failure into a figure the test reports itself (they are killed anyway).
	survivorsExpected bool
}

// logLine is one JSON log line of percore's, with the time it was read.
type logLine struct {
	at  time.Time
	msg string
	m   map[string]any
}

// instance is one running percore binary.
type instance struct {
	t     *testing.T
	opts  options
	cmd   *exec.Cmd
	mark  string
	addr  string // the public address
	admin string // the admin listener's address

	mu       sync.Mutex // protects the fields below
	logs     []logLine
	stderr   []string // the last raw stderr lines, for failure reports
	appLines []string // stdout lines starting with "chaos-saw" or "chaos-client-error"

	stdoutBytes atomic.Int64
	stdoutLines atomic.Int64
	readers     sync.WaitGroup
	exited      chan struct{}
	exitAt      time.Time // set before exited closes
	err         error     // set before exited closes
}

const stderrKept = 400

// start runs percore on free loopback ports and waits until its workers
// are ready (workers is the --workers value the args give).
func start(t *testing.T, workers int, opts options) *instance {
	t.Helper()
	in := launch(t, opts)
	in.waitReady(workers, 30*time.Second)
	return in
}

// launch runs percore and waits for its listeners, not for workers.
func launch(t *testing.T, opts options) *instance {
	t.Helper()
	mark := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	bin := percoreBin
	if opts.binary != "" {
		bin = opts.binary
	}
	control := cmp.Or(opts.control, "off")
	argv := []string{bin, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--log-format", "json", "--control", control}
	if opts.direct {
		argv = append(argv, "--mode", "direct")
	}
	argv = append(append(append([]string(nil), opts.wrapper...), argv...), opts.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "CHAOS_MARK="+mark), opts.env...)
	// percore's own process group, so that a failed cleanup can kill it and
	// a wrapper together (its workers have groups of their own); and the
	// parent-death signal, so that percore dies with the test binary even
	// when a -timeout panic skips the cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, opts: opts, cmd: cmd, mark: mark, exited: make(chan struct{})}
	if err := spawn.start(cmd); err != nil {
		t.Fatal(err)
	}
	in.readers.Add(2)
	go in.readStdout(stdout)
	go in.readStderr(stderr)
	go in.waitExit()
	t.Cleanup(in.cleanup)
	if opts.direct {
		in.addr = in.logField("direct mode: workers accept", "addr")
	} else {
		in.addr = in.logField("proxy listening", "addr")
	}
	in.admin = in.logField("admin listening", "addr")
	return in
}

// readStdout reads the workers' output as fast as it comes.
func (in *instance) readStdout(r io.Reader) {
	defer in.readers.Done()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			at := time.Now()
			in.stdoutBytes.Add(int64(len(line)))
			in.stdoutLines.Add(1)
			if in.opts.onStdout != nil {
				in.opts.onStdout(line, at)
			}
			if len(line) > 6 && string(line[:6]) == "chaos-" && !strings.HasPrefix(string(line), "chaos-tick") {
				in.mu.Lock()
				if len(in.appLines) < 10000 {
					in.appLines = append(in.appLines, strings.TrimSpace(string(line)))
				}
				in.mu.Unlock()
			}
		}
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: the rest follows
		}
		if err != nil {
			return
		}
	}
}

// readStderr parses percore's JSON log lines and keeps the last raw lines.
func (in *instance) readStderr(r io.Reader) {
	defer in.readers.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		at := time.Now()
		var m map[string]any
		parsed := json.Unmarshal([]byte(line), &m) == nil && m["@message"] != nil
		in.mu.Lock()
		if len(in.stderr) == stderrKept {
			copy(in.stderr, in.stderr[1:])
			in.stderr = in.stderr[:stderrKept-1]
		}
		in.stderr = append(in.stderr, line)
		if parsed {
			msg, _ := m["@message"].(string)
			in.logs = append(in.logs, logLine{at: at, msg: msg, m: m})
		}
		in.mu.Unlock()
	}
}

// waitExit is the one waiter of percore (or its wrapper): it waits until
// both pipes are drained, as exec requires, then for the process.
func (in *instance) waitExit() {
	in.readers.Wait()
	in.err = in.cmd.Wait()
	in.exitAt = time.Now()
	close(in.exited)
}

// pid is percore's pid, or its wrapper's.
func (in *instance) pid() int { return in.cmd.Process.Pid }

// recentStderr returns the last stderr lines, for failure messages.
func (in *instance) recentStderr() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := len(in.stderr)
	return strings.Join(in.stderr[max(0, n-60):], "\n")
}

// logCount is how many log lines have been read so far; pass it to
// waitLog to look only at lines after this point.
func (in *instance) logCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.logs)
}

// countLogs counts log lines from index from on whose message starts with msg.
func (in *instance) countLogs(msg string, from int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, l := range in.logs[min(from, len(in.logs)):] {
		if strings.HasPrefix(l.msg, msg) {
			n++
		}
	}
	return n
}

// logsMatching returns the log lines from index from on whose message
// starts with msg.
func (in *instance) logsMatching(msg string, from int) []logLine {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []logLine
	for _, l := range in.logs[min(from, len(in.logs)):] {
		if strings.HasPrefix(l.msg, msg) {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits for a log line, from index from on, whose message starts
// with msg; it fails the test after timeout or when percore exits.
func (in *instance) waitLog(msg string, from int, timeout time.Duration) logLine {
	in.t.Helper()
	l, ok := in.awaitLog(msg, from, timeout)
	if !ok {
		in.t.Fatalf("no log line %q within %s; percore's last lines:\n%s", msg, timeout, in.recentStderr())
	}
	return l
}

// awaitLog is waitLog that reports a miss instead of failing.
func (in *instance) awaitLog(msg string, from int, timeout time.Duration) (logLine, bool) {
	deadline := time.Now().Add(testutil.Scaled(timeout))
	for {
		if ls := in.logsMatching(msg, from); len(ls) > 0 {
			return ls[0], true
		}
		select {
		case <-in.exited:
			if ls := in.logsMatching(msg, from); len(ls) > 0 {
				return ls[0], true
			}
			return logLine{}, false
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return logLine{}, false
		}
	}
}

func (in *instance) logField(msg, field string) string {
	in.t.Helper()
	v, _ := in.waitLog(msg, 0, 20*time.Second).m[field].(string)
	return v
}

// appLinesWith returns the app's marker lines that start with prefix.
func (in *instance) appLinesWith(prefix string) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, l := range in.appLines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// signal sends sig to percore.
func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatalf("signal percore with %s: %v", sig, err)
	}
}

// waitExitCode waits for percore to exit and returns its exit code.
func (in *instance) waitExitCode(timeout time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(timeout):
		in.t.Fatalf("percore did not exit within %s; its last lines:\n%s", timeout, in.recentStderr())
	}
	if in.err == nil {
		return 0
	}
	if ee, ok := in.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// cleanup stops percore (SIGTERM, then SIGKILL to its group after 20 s) and
// kills whatever it started that is still alive; survivors fail the test
// unless the test expects them.
func (in *instance) cleanup() {
	select {
	case <-in.exited:
	default:
		_ = in.cmd.Process.Signal(syscall.SIGTERM) // it may be exiting already
		select {
		case <-in.exited:
		case <-time.After(20 * time.Second):
			in.t.Errorf("percore did not stop within 20s of SIGTERM")
			_ = syscall.Kill(-in.pid(), syscall.SIGKILL) // the group of percore and any wrapper
			<-in.exited
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	pids := markedProcesses(in.mark)
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		pids = markedProcesses(in.mark)
	}
	if len(pids) == 0 {
		return
	}
	var what []string
	for _, pid := range pids {
		what = append(what, fmt.Sprintf("%d (%s)", pid, cmdline(pid)))
		_ = syscall.Kill(pid, syscall.SIGKILL) // it may have just exited
	}
	if !in.opts.survivorsExpected {
		in.t.Errorf("processes started by percore outlived it (killed now): %s", strings.Join(what, ", "))
	}
}

// workerStatus is the part of one worker's entry in /status the suite reads.
type workerStatus struct {
	ID       int     `json:"id"`
	PID      int     `json:"pid"`
	State    string  `json:"state"`
	Ready    bool    `json:"ready"`
	Restarts int     `json:"restarts"`
	Replaced int     `json:"replaced"`
	RSSBytes uint64  `json:"rss_bytes"`
	UptimeS  float64 `json:"uptime_s"`
	LastExit *struct {
		Code   int    `json:"code"`
		Signal string `json:"signal"`
		Reason string `json:"reason"`
	} `json:"last_exit"`
}

// status is the part of /status the suite reads.
type status struct {
	ReadyWorkers int            `json:"ready_workers"`
	Workers      []workerStatus `json:"workers"`
}

var adminClient = &http.Client{Timeout: 5 * time.Second}

// status fetches /status.
func (in *instance) status() (status, error) {
	var st status
	resp, err := adminClient.Get("http://" + in.admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// readyPids returns the pids of the ready workers.
func (st status) readyPids() []int {
	var pids []int
	for _, w := range st.Workers {
		if w.Ready && w.State == "ready" && w.PID > 0 {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

// waitReady waits until n workers are ready; it fails the test otherwise.
func (in *instance) waitReady(n int, timeout time.Duration) status {
	in.t.Helper()
	st, ok := in.awaitReady(n, timeout)
	if !ok {
		in.t.Fatalf("%d of %d workers ready after %s: %+v; percore's last lines:\n%s",
			len(st.readyPids()), n, timeout, st.Workers, in.recentStderr())
	}
	return st
}

// awaitReady is waitReady that reports a miss instead of failing.
func (in *instance) awaitReady(n int, timeout time.Duration) (status, bool) {
	return in.awaitStatus(timeout, func(st status) bool {
		return len(st.readyPids()) == n && len(st.Workers) == n
	})
}

// awaitStatus polls /status until done approves of it, or timeout.
func (in *instance) awaitStatus(timeout time.Duration, done func(status) bool) (status, bool) {
	deadline := time.Now().Add(testutil.Scaled(timeout))
	var st status
	for {
		s, err := in.status()
		if err == nil {
			st = s
			if done(st) {
				return st, true
			}
		}
		if time.Now().After(deadline) {
			return st, false
		}
		select {
		case <-in.exited:
			return st, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// getPid sends one GET to percore's public port and returns the pid of the
// worker that answered.
func (in *instance) getPid(path string) int {
	in.t.Helper()
	resp, err := adminClient.Get("http://" + in.addr + path)
	if err != nil {
		in.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		in.t.Fatalf("GET %s: %s %q", path, resp.Status, body)
	}
	return pidIn(body)
}

// appPath is the path of a file in testdata.
func appPath(name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		return filepath.Join("testdata", name)
	}
	return p
}

// needNode skips a test when node is not installed.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
}
