//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the other local user of these tests.
const nobody = 65534

func needRootAndNode(t *testing.T) {
	t.Helper()
	needNode(t)
	if os.Geteuid() != 0 {
		t.Skip("running a process as another user needs the test to run as root")
	}
}

// squatterJS listens on the socket path in argv and answers every command
// "ok", as whoever took a control socket's path first could.
const squatterJS = `
const net = require("net");
net.createServer((c) => {
  c.on("error", () => {});
  c.on("data", () => c.end("ok reload started\n"));
}).listen(process.argv[1], () => console.log("listening"));
`

// startSquatter runs a node process as nobody that listens on path; it is
// killed when the test ends. It returns its pid.
func startSquatter(t *testing.T, path string) int {
	t.Helper()
	cmd := exec.Command("node", "-e", squatterJS, path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true,
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "listening"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("the squatter did not listen on %s: %s", path, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the squatter did not listen on %s within 10s", path)
	}
	return cmd.Process.Pid
}

// squatDir is a directory of nobody's in the shared temporary directory,
// where nobody can bind a socket.
func squatDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "percore-squat-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

// privateRuntimeDir points XDG_RUNTIME_DIR, for this test and the
// processes it starts, at a fresh directory of ours with mode 0700 right in
// the shared temporary directory (so that it can be opened to nobody), so the
// default control socket is $XDG_RUNTIME_DIR/percore/control.sock. TMPDIR
// follows, so that no other default is shared with other tests either.
func privateRuntimeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "percore-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv("TMPDIR", dir)
	return dir
}

// runCLI runs the percore binary to its end (killed after 30s) and returns
// its stdout, its stderr and its exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLIVia(t, nil, nil, args...)
}

// runCLIVia is runCLI through a wrapper command (which must exec its
// trailing arguments), as the user cred when it is not nil.
func runCLIVia(t *testing.T, wrapper []string, cred *syscall.Credential, args ...string) (string, string, int) {
	t.Helper()
	argv := append(append(append([]string(nil), wrapper...), percoreBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	if !timer.Stop() {
		t.Errorf("percore %s was still running after 30s", strings.Join(args, " "))
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// wantRefused checks that a control command refused to talk to the
// squatter: no "ok", a non-zero exit, and an error naming it.
func wantRefused(t *testing.T, what, stdout, stderr string, code, squatter int) {
	t.Helper()
	if code == 0 || strings.Contains(stdout, "ok") {
		t.Errorf("%s: exit %d, stdout %q: it talked to a socket of uid %d", what, code, stdout, nobody)
	}
	for _, want := range []string{"pid " + strconv.Itoa(squatter), "uid 65534", "refusing"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s: stderr %q does not say %q", what, stderr, want)
		}
	}
}

// Issue 13: "percore reload" and "percore scale" as root said "ok" to a
// socket that another user had bound.
func TestControlCommandRefusesASocketOfAnotherUser(t *testing.T) {
	needRootAndNode(t)
	path := filepath.Join(squatDir(t), "control.sock")
	squatter := startSquatter(t, path)

	stdout, stderr, code := runCLI(t, "reload", "--control", path)
	wantRefused(t, "percore reload", stdout, stderr, code, squatter)
	stdout, stderr, code = runCLI(t, "scale", "+1", "--control", path)
	wantRefused(t, "percore scale", stdout, stderr, code, squatter)
}

// Issue 13: percore started with a --control path that another user holds
// ran on with a warning; it now refuses to start.
func TestControlPathOfAnotherUserStopsStartup(t *testing.T) {
	needRootAndNode(t)
	dir := squatDir(t)
	path := filepath.Join(dir, "control.sock")
	startSquatter(t, path)

	_, stderr, code := runCLI(t, "--listen", "127.0.0.1:0", "--admin", "off", "--workers", "1",
		"--control", path, "--", "node", appJS())
	if code != exitUsage {
		t.Errorf("exit code = %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	if !strings.Contains(stderr, dir+" is owned by uid 65534") || strings.Contains(stderr, "worker ready") {
		t.Errorf("stderr does not name the directory of uid 65534 before any worker starts:\n%s", stderr)
	}

	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, "--listen", "127.0.0.1:0", "--admin", "off", "--workers", "1",
		"--control", filepath.Join(open, "control.sock"), "--", "node", appJS())
	if code != exitUsage || !strings.Contains(stderr, open+" can be written by other users") {
		t.Errorf("a 0777 directory: exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
}

// portOf is the port of a HOST:PORT address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// wantReloaded checks that a control command said ok and that in then
// replaced its workers.
func wantReloaded(t *testing.T, in *instance, what, stdout, stderr string, code int) {
	t.Helper()
	if code != 0 || !strings.Contains(stdout, "ok reload started") {
		t.Fatalf("%s: exit %d, stdout %q, stderr %q", what, code, stdout, stderr)
	}
	in.waitLog("reload done", 30*time.Second)
}

// The default control socket is abstract, named after the public address,
// and makes no file: percore reload --port reaches it.
func TestReloadThroughTheDefaultControlSocket(t *testing.T) {
	needNode(t)
	rundir := privateRuntimeDir(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	port := portOf(t, in.addr)
	if got, want := controlSocketOf(in), "@percore/127.0.0.1:"+port; got != want {
		t.Errorf("control socket at %q, want %q", got, want)
	}
	if _, err := os.Lstat(filepath.Join(rundir, "percore")); !os.IsNotExist(err) {
		t.Errorf("the default control socket made a directory in $XDG_RUNTIME_DIR: %v", err)
	}
	before := servingPids(t, in, 20)
	stdout, stderr, code := runCLI(t, "reload", "--port", port)
	wantReloaded(t, in, "percore reload --port "+port, stdout, stderr, code)
	for pid := range servingPids(t, in, 20) {
		if before[pid] {
			t.Errorf("pid %d was not replaced by the reload", pid)
		}
	}
	stdout, stderr, code = runCLI(t, "scale", "3", "--listen", "127.0.0.1:"+port)
	if code != 0 || !strings.Contains(stdout, "workers=3") {
		t.Errorf("percore scale 3 --listen: exit %d, %q %q", code, stdout, stderr)
	}
}

// With --user, percore opens its control socket before it becomes the
// user, like its ports: the kernel reports root as its server, so root's
// percore reload reaches it; and only root may command it: the --user
// uid, whose code the workers run, may not.
func TestUserKeepsTheControlSocketOfRoot(t *testing.T) {
	needRootAndNode(t)
	privateRuntimeDir(t)
	in := start(t, "--workers", "1", "--user", "nobody", "--", "node", appJS())
	port := portOf(t, in.addr)
	if got, want := controlSocketOf(in), "@percore/127.0.0.1:"+port; got != want {
		t.Errorf("control socket at %q, want %q", got, want)
	}

	// nobody must be able to run the binary to be refused by percore.
	if err := os.Chmod(filepath.Dir(percoreBin), 0o755); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLIVia(t, nil, &syscall.Credential{Uid: nobody, Gid: nobody}, "reload", "--port", port)
	if code != exitError || strings.Contains(stdout, "ok") || !strings.Contains(stderr, "refused") ||
		!strings.Contains(stderr, "uid 65534") {
		t.Errorf("percore reload as nobody: exit %d, stdout %q, stderr %q; want a refusal naming uid 65534", code, stdout, stderr)
	}
	m := in.findLog("refused a control command", 10*time.Second)
	if m["@level"] != "warn" || !strings.Contains(fmt.Sprint(m["error"]), "uid 65534") {
		t.Errorf("log line %v: want a warning naming uid 65534", m)
	}
	if slices.ContainsFunc(logMessages(in), func(s string) bool { return strings.HasPrefix(s, "reload started") }) {
		t.Fatal("a command of nobody's started a reload")
	}

	before := servingPids(t, in, 5)
	stdout, stderr, code = runCLI(t, "reload", "--port", port)
	wantReloaded(t, in, "percore reload as root to a percore running as nobody", stdout, stderr, code)
	for pid := range servingPids(t, in, 5) {
		if before[pid] {
			t.Errorf("pid %d was not replaced by the reload", pid)
		}
	}
}

// logMessages is every log message of in so far.
func logMessages(in *instance) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var msgs []string
	for _, m := range in.seen {
		if s, ok := m["@message"].(string); ok {
			msgs = append(msgs, s)
		}
	}
	return msgs
}
