//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Two percores as root on one host, each with its default control socket:
// each has its own, named after its public address; percore reload --port
// reaches the one named and no other; without a name, reload refuses and
// lists both, and status lists both with their admin addresses.
func TestReloadPicksThePercoreByPort(t *testing.T) {
	needNode(t)
	privateRuntimeDir(t)
	a := start(t, "--workers", "1", "--", "node", appJS())
	b := start(t, "--workers", "1", "--", "node", appJS())
	portA, portB := portOf(t, a.addr), portOf(t, b.addr)
	for _, in := range []*instance{a, b} {
		if got, want := controlSocketOf(in), "@percore/"+in.addr; got != want {
			t.Errorf("control socket at %q, want %q", got, want)
		}
	}

	// Other percores of this host may be listed too; ours must be, and the
	// command must send nothing.
	stdout, stderr, code := runCLI(t, "reload")
	if code != exitUsage || strings.Contains(stdout, "ok") {
		t.Errorf("percore reload with two percores: exit %d, stdout %q; want 2 and nothing sent", code, stdout)
	}
	for _, want := range []string{"percores run here", "--listen " + a.addr, "--listen " + b.addr} {
		if !strings.Contains(stderr, want) {
			t.Errorf("percore reload with two percores: stderr %q does not say %q", stderr, want)
		}
	}

	stdout, stderr, code = runCLI(t, "status")
	if code != 0 {
		t.Errorf("percore status with two percores: exit %d, %q %q", code, stdout, stderr)
	}
	for _, in := range []*instance{a, b} {
		if !strings.Contains(stdout, in.admin) || !strings.Contains(stdout, "@percore/"+in.addr) {
			t.Errorf("percore status lists no row with %s and its admin %s:\n%s", in.addr, in.admin, stdout)
		}
	}
	stdout, stderr, code = runCLI(t, "status", "--port", portB)
	if code != 0 || !strings.Contains(stdout, "1/1 workers ready") {
		t.Errorf("percore status --port %s: exit %d, %q %q", portB, code, stdout, stderr)
	}

	stdout, stderr, code = runCLI(t, "reload", "--port", portA)
	wantReloaded(t, a, "percore reload --port "+portA, stdout, stderr, code)
	for _, msg := range logMessages(b) {
		if strings.HasPrefix(msg, "reload") || strings.HasPrefix(msg, "control command") {
			t.Errorf("percore on port %s logged %q: the reload of port %s reached it", portB, msg, portA)
		}
	}
	if n := countPrefix(logMessages(a), "reload started"); n != 1 {
		t.Errorf("percore on port %s started %d reloads, want 1", portA, n)
	}
}

// controlSocketOf is the control socket in's log names, "" when none: the
// line comes before the first worker starts.
func controlSocketOf(in *instance) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.seen {
		if m["@message"] == "control socket" {
			path, _ := m["path"].(string)
			return path
		}
	}
	return ""
}

func countPrefix(msgs []string, prefix string) int {
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// readOnlyRun runs its trailing arguments in a mount namespace of their
// own where /run is an empty read-only file system, as in a container
// with a read-only root: no control socket file can be made there.
func readOnlyRun(t *testing.T) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a mount namespace needs the test to run as root")
	}
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("unshare -m: %v", err)
	}
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o ro,size=64k percore-ro /run && exec "$@"`, "sh"}
}

// A percore with no writable directory for its control socket (root, whose
// default directory is /run/percore, with /run read-only) still answers
// percore reload.
func TestControlWithoutAWritableDirectory(t *testing.T) {
	needNode(t)
	wrapper := readOnlyRun(t)
	tmp := t.TempDir() // the workers' preload still needs a TMPDIR
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	in := launchVia(t, wrapper, "--workers", "1", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)
	port := portOf(t, in.addr)
	if got := controlSocketOf(in); got != "@percore/127.0.0.1:"+port {
		t.Errorf("control socket at %q, want @percore/127.0.0.1:%s", got, port)
	}
	stdout, stderr, code := runCLI(t, "reload", "--port", port)
	wantReloaded(t, in, "percore reload to a percore with a read-only /run", stdout, stderr, code)
	for _, msg := range logMessages(in) {
		if strings.Contains(msg, "without a control socket") {
			t.Errorf("percore logged %q", msg)
		}
	}
}

// ownNetwork runs its trailing arguments in a network namespace of their
// own with loopback up: the abstract sockets there are theirs alone, so
// "the only percore running" is the test's. In returns the wrapper that
// runs a command in the namespace of the process pid.
func ownNetwork(t *testing.T) (wrapper []string, in func(pid int) []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a network namespace needs the test to run as root")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("unshare -n: %v", err)
	}
	return []string{"unshare", "-n", "sh", "-c", `ip link set lo up && exec "$@"`, "sh"},
		func(pid int) []string { return []string{"nsenter", "--net=/proc/" + strconv.Itoa(pid) + "/ns/net"} }
}

// The only percore running is found without --port: percore reload and
// percore status reach it.
func TestReloadFindsTheOnlyPercore(t *testing.T) {
	needNode(t)
	wrapper, inNet := ownNetwork(t)
	privateRuntimeDir(t)
	in := launchVia(t, wrapper, "--workers", "1", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)
	if got := controlSocketOf(in); got != "@percore/"+in.addr {
		t.Errorf("control socket at %q, want @percore/%s", got, in.addr)
	}
	there := inNet(in.cmd.Process.Pid)
	stdout, stderr, code := runCLIVia(t, there, nil, "reload")
	wantReloaded(t, in, "percore reload with one percore", stdout, stderr, code)
	stdout, stderr, code = runCLIVia(t, there, nil, "status")
	if code != 0 || !strings.Contains(stdout, "1/1 workers ready") {
		t.Errorf("percore status with one percore: exit %d, %q %q", code, stdout, stderr)
	}
}

// asNobody runs f on an OS thread of its own whose effective uid is
// nobody's: what the kernel records for a socket that f binds
// (SO_PEERCRED). Only that thread changes, and it ends with f.
func asNobody(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread is thrown away
		_, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), nobody, ^uintptr(0))
		if e != 0 {
			t.Errorf("setresuid: %v", e)
			return
		}
		f()
	}()
	<-done
}

// squatAbstract binds the abstract socket addr as nobody, as any local
// user could before percore starts, and answers every connection "ok". It
// returns the number of bytes it was sent so far.
func squatAbstract(t *testing.T, addr string) func() int64 {
	t.Helper()
	var ln net.Listener
	asNobody(t, func() {
		var err error
		if ln, err = net.Listen("unix", addr); err != nil {
			t.Errorf("listen on %s as nobody: %v", addr, err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.Copy(io.Discard, bufio.NewReader(io.LimitReader(c, 1<<10)))
			got.Add(n)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return got.Load
}

// freePort is a loopback port that nothing listens on just now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return portOf(t, ln.Addr().String())
}

// Another user binds a percore's abstract control socket name before it
// starts: percore says who holds it and does not share it, and percore
// reload refuses to send to the squatter.
func TestControlNameTakenByAnotherUser(t *testing.T) {
	needRootAndNode(t)
	privateRuntimeDir(t)
	port := freePort(t)
	addr := "@percore/127.0.0.1:" + port
	sent := squatAbstract(t, addr)

	in := start(t, "--listen", "127.0.0.1:"+port, "--workers", "1", "--", "node", appJS())
	m := in.findLog("refusing to share the control socket's name", 10*time.Second)
	if msg := fmt.Sprint(m["error"]); m["@level"] != "error" || !strings.Contains(msg, addr) || !strings.Contains(msg, "uid 65534") {
		t.Errorf("log line %v: want an error naming %s and uid 65534", m, addr)
	}
	stdout, stderr, code := runCLI(t, "reload", "--port", port)
	wantRefused(t, "percore reload --port "+port, stdout, stderr, code, os.Getpid())
	if n := sent(); n != 0 {
		t.Errorf("the squatter was sent %d bytes", n)
	}
}
