// Package examples_test runs every example app under a percore binary built
// by the Dockerfile's own go build line, and checks the deployment files and
// Dockerfiles against percore's defaults. With podman, as root, it also
// builds both Dockerfiles and runs the app image (container_linux_test.go).
package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/percore/percore/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testVersion is the version stamped into percoreBin.
const testVersion = "test-1.2.3"

// percoreBin is percore, built once in TestMain exactly as the Dockerfile
// builds it (static, -trimpath, stripped, version testVersion).
var percoreBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "percore-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	percoreBin = filepath.Join(dir, "percore")
	if err := buildLikeDockerfile(percoreBin, testVersion); err != nil {
		fmt.Fprintln(os.Stderr, "build percore as the Dockerfile does:", err)
		return 1
	}
	return m.Run()
}

// buildLikeDockerfile runs the Dockerfile's go build line on this machine.
func buildLikeDockerfile(out, version string) error {
	df, err := parseDockerfile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		return err
	}
	gb, err := df.findGoBuild()
	if err != nil {
		return fmt.Errorf("Dockerfile: %w", err)
	}
	cmd, err := gb.command(repoRoot(), version, out)
	if err != nil {
		return fmt.Errorf("Dockerfile: %w", err)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// needRuntime returns the path of node, deno or bun: deno and bun as
// scripts/install-tools puts them in .tools/bin, else from PATH. A missing
// runtime skips the test, or fails it when the CI variable is set.
func needRuntime(t *testing.T, name string) string {
	t.Helper()
	local := filepath.Join(repoRoot(), ".tools", "bin", name)
	if _, err := os.Stat(local); err == nil {
		return local
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; CI must provide it (scripts/install-tools installs deno and bun)", name)
	}
	t.Skipf("%s is not installed (scripts/install-tools installs deno and bun)", name)
	return ""
}

// instance is one running percore.
type instance struct {
	t      *testing.T
	cmd    *exec.Cmd
	mark   string
	addr   string // the public address
	admin  string // the admin address
	output *lockedBuffer
	mu     sync.Mutex       // protects seen
	seen   []map[string]any // percore's JSON log lines so far
	exited chan struct{}
	err    error // how the process ended; read after exited is closed
}

type lockedBuffer = testutil.LockedBuffer

// startPercore runs percore in dir on free loopback ports with JSON logs,
// the variables env added to the test's environment, and args (flags, "--"
// and the command). It returns once both listeners are open. Each percore
// gets a TMPDIR of its own; its control socket is named after its port, so
// that is its own too.
func startPercore(t *testing.T, dir string, env []string, args ...string) *instance {
	t.Helper()
	tmp, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	mark := fmt.Sprintf("percore-examples-%d-%d", os.Getpid(), time.Now().UnixNano())
	full := append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(percoreBin, full...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "TMPDIR="+tmp, "PERCORE_EXAMPLES_MARK="+mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in := &instance{t: t, cmd: cmd, mark: mark, output: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = in.output
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go in.readLogs(stderr)
	t.Cleanup(in.cleanup)
	in.addr = in.waitLogs("proxy listening", 1, 20*time.Second)[0]["addr"].(string)
	in.admin = in.waitLogs("admin listening", 1, 20*time.Second)[0]["addr"].(string)
	return in
}

// readLogs keeps percore's stderr and parses its JSON lines, then waits for
// the process.
func (in *instance) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		in.output.Write([]byte(string(line) + "\n"))
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["@message"] != nil {
			in.mu.Lock()
			in.seen = append(in.seen, m)
			in.mu.Unlock()
		}
	}
	in.err = in.cmd.Wait()
	close(in.exited)
}

// logs returns the log lines so far whose message starts with msg.
func (in *instance) logs(msg string) []map[string]any {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []map[string]any
	for _, m := range in.seen {
		if s, _ := m["@message"].(string); strings.HasPrefix(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// waitLogs waits until n log lines start with msg and returns them.
func (in *instance) waitLogs(msg string, n int, timeout time.Duration) []map[string]any {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := in.logs(msg); len(got) >= n {
			return got[:n]
		}
		select {
		case <-in.exited:
			in.t.Fatalf("percore exited before logging %q %d times; output:\n%s", msg, n, in.output.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("percore did not log %q %d times within %s; output:\n%s", msg, n, timeout, in.output.String())
		}
	}
}

// workers waits until n workers are ready and returns their addresses.
func (in *instance) workers(n int) []string {
	in.t.Helper()
	var addrs []string
	for _, m := range in.waitLogs("worker ready", n, 30*time.Second) {
		addr, _ := m["addr"].(string)
		addrs = append(addrs, addr)
	}
	return addrs
}

// stop sends SIGTERM and fails the test unless percore exits 0 in time and
// every worker that stopped exited 0, that is handled SIGTERM itself.
func (in *instance) stop() {
	in.t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		in.t.Fatalf("signal percore: %v", err)
	}
	select {
	case <-in.exited:
	case <-time.After(20 * time.Second):
		in.t.Fatalf("percore did not exit within 20s of SIGTERM; output:\n%s", in.output.String())
	}
	if code := exitCode(in.err); code != 0 {
		in.t.Fatalf("percore exited %d after SIGTERM, want 0; output:\n%s", code, in.output.String())
	}
	stopped := in.logs("worker stopped")
	if len(stopped) == 0 {
		in.t.Errorf("no worker stopped line; output:\n%s", in.output.String())
	}
	for _, m := range stopped {
		if m["exit"] != "exit code 0" {
			in.t.Errorf("worker %v stopped with %v, want exit code 0 (does the app handle SIGTERM?)", m["worker"], m["exit"])
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// cleanup stops a percore the test left running (SIGKILL after 20s) and
// fails the test if a process percore started outlives it.
func (in *instance) cleanup() {
	testutil.StopPercore(in.t, in.cmd.Process, in.exited, "PERCORE_EXAMPLES_MARK", in.mark)
}

// client is the tests' HTTP client; every request is bounded.
var client = &http.Client{Timeout: 10 * time.Second}

// get GETs url and fails the test unless the answer is 200. It returns the body.
func get(t *testing.T, url string) string {
	t.Helper()
	return getWith(t, client, url)
}

// getWorker GETs path straight from a worker at addr: a loopback host:port,
// or the path of the Unix socket a node worker listens on in proxy mode.
func getWorker(t *testing.T, addr, path string) string {
	t.Helper()
	if !strings.HasPrefix(addr, "/") {
		return get(t, "http://"+addr+path)
	}
	c := &http.Client{Timeout: client.Timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialWorker(ctx, addr)
		},
	}}
	defer c.CloseIdleConnections()
	return getWith(t, c, "http://worker"+path)
}

// dialWorker connects to a worker's own address, TCP or Unix.
func dialWorker(ctx context.Context, addr string) (net.Conn, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// getWith GETs url with c; see get.
func getWith(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200: %s", url, resp.StatusCode, body)
	}
	return string(body)
}
