package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
	"golang.org/x/sys/unix"
)

// pidLabel is the label on every container the lane starts: the pid of the
// test process, so that a later run can remove what a killed one left.
const pidLabel = "percore-test-pid"

// podman runs podman as root the way this machine and CI allow: runc as the
// OCI runtime (crun 1.8, Debian 12's, refuses hybrid cgroup hosts), the
// cgroupfs cgroup manager (no systemd needed), and open-file and process
// limits within the hard limits that podman may set (its default of 1048576
// is above them here, and runc cannot raise a hard limit).
type podman struct {
	bin     string
	global  []string // flags before the subcommand
	ulimits []string // --ulimit flags for run and build
}

// needPodman returns podman ready to use, or skips the test with the reason
// it cannot run containers here.
func needPodman(t *testing.T) *podman {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the container lane builds images and runs containers for a minute or more")
	}
	if os.Geteuid() != 0 {
		t.Skip("the container lane runs podman as root, to set cgroup limits and read the containers' cgroups")
	}
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (scripts/install-tools.d/podman.sh installs it and runc with apt-get)")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/install-tools.d/podman.sh installs it with apt-get)")
	}
	pm := &podman{bin: bin, global: []string{"--runtime", runc, "--cgroup-manager", "cgroupfs"}}
	pm.ulimits, err = containerUlimits()
	if err != nil {
		t.Skipf("cannot read this process's limits: %v", err)
	}
	if out, err := pm.command(context.Background(), "info").CombinedOutput(); err != nil {
		t.Skipf("podman cannot run here: %v\n%s", err, out)
	}
	pm.sweep(t)
	return pm
}

// containerUlimits returns --ulimit flags at this process's hard limits for
// open files and processes. podman itself runs with at most
// kernel.pid_max processes, so runc cannot set more.
func containerUlimits() ([]string, error) {
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		return nil, err
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		return nil, err
	}
	procs := nproc.Max
	if data, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if max, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil && max < procs {
			procs = max
		}
	}
	return []string{
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Max, nofile.Max),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", procs, procs),
	}, nil
}

// command is podman with the global flags and args, ended when ctx is.
func (pm *podman) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, pm.bin, append(append([]string{}, pm.global...), args...)...)
}

// output runs a short podman command and returns its trimmed standard
// output; it fails the test on an error, with podman's messages.
func (pm *podman) output(t *testing.T, args ...string) string {
	t.Helper()
	out, err := pm.try(testutil.Scaled(time.Minute), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// try runs podman with args within timeout and returns its trimmed
// standard output, or an error that holds its standard error.
func (pm *podman) try(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := pm.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("podman %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// imageID returns the ID of the image called name, or "" when there is none.
func (pm *podman) imageID(name string) string {
	id, err := pm.try(time.Minute, "image", "inspect", "--format", "{{.Id}}", name)
	if err != nil {
		return ""
	}
	return id
}

// importRootfs imports r as repo:TAG, TAG a hash of r's content, unless an
// image of that name exists already; other tags of repo are removed. It
// returns the image's name.
func (pm *podman) importRootfs(t *testing.T, repo string, r *rootfs) string {
	t.Helper()
	tag, err := r.tag()
	if err != nil {
		t.Fatal(err)
	}
	name := repo + ":" + tag
	if pm.imageID(name) != "" {
		return name
	}
	args := []string{"import"}
	for _, e := range r.env {
		args = append(args, "--change", "ENV "+e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scaled(5*time.Minute))
	defer cancel()
	cmd := pm.command(ctx, append(args, "-", name)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	written := make(chan error, 1)
	go func() {
		err := r.writeTar(stdin)
		stdin.Close()
		written <- err
	}()
	werr := <-written
	if err := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("podman import %s: %v (writing the rootfs: %v)\n%s", name, err, werr, out.Bytes())
	}
	pm.removeOtherTags(repo, tag)
	return name
}

// removeOtherTags removes the images of repo with another tag than keep,
// left by earlier runs on other files; one in use stays.
func (pm *podman) removeOtherTags(repo, keep string) {
	out, err := pm.try(time.Minute, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+repo)
	if err != nil {
		return
	}
	for _, name := range strings.Fields(out) {
		if name != repo+":"+keep {
			_, _ = pm.try(time.Minute, "rmi", name)
		}
	}
}

// build runs podman build offline, never pulling, and tags the image name;
// the image name had before is removed when the build made a new one. podman's
// layer cache makes a build of unchanged files take a second.
func (pm *podman) build(t *testing.T, name, dockerfile, contextDir string, args ...string) {
	t.Helper()
	old := pm.imageID(name)
	full := []string{"build", "--pull=never", "--network", "none", "-f", dockerfile, "-t", name}
	full = append(append(append(full, pm.ulimits...), args...), contextDir)
	if _, err := pm.try(testutil.Scaled(10*time.Minute), full...); err != nil {
		t.Fatal(err)
	}
	if id := pm.imageID(name); old != "" && id != old {
		_, _ = pm.try(time.Minute, "rmi", old)
	}
}

// sweep removes the containers of earlier runs whose test process is gone.
func (pm *podman) sweep(t *testing.T) {
	t.Helper()
	out := pm.output(t, "ps", "-a", "--filter", "label="+pidLabel, "--format", `{{.Names}} {{index .Labels "`+pidLabel+`"}}`)
	for _, line := range strings.Split(out, "\n") {
		name, pid, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		t.Logf("removing container %s, left by test process %s", name, pid)
		_, _ = pm.try(time.Minute, "rm", "-f", "-t", "0", name)
	}
}

// container is one `podman run`, attached as a user's terminal would be:
// its output is the container's, and it exits with the container.
type container struct {
	t      *testing.T
	pm     *podman
	name   string
	cmd    *exec.Cmd
	output *testutil.LockedBuffer // the container's stdout and stderr
	exited chan struct{}
	err    error // how `podman run` ended; read after exited is closed
}

// unsafeName matches what a container name may not hold.
var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// start runs image with podman run's flags opts (limits, ports, user, …)
// and the image's own entrypoint and command. The container is removed
// when the test ends.
func (pm *podman) start(t *testing.T, image string, opts ...string) *container {
	t.Helper()
	name := fmt.Sprintf("percore-test-%d-%s", os.Getpid(), strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-")))
	args := []string{"run", "--name", name, "--label", fmt.Sprintf("%s=%d", pidLabel, os.Getpid()), "--pull=never"}
	args = append(append(append(args, pm.ulimits...), opts...), image)
	c := &container{t: t, pm: pm, name: name, output: &testutil.LockedBuffer{}, exited: make(chan struct{})}
	// No deadline: the container lives until the test stops or removes it.
	c.cmd = pm.command(context.Background(), args...)
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go c.wait()
	t.Cleanup(c.remove)
	return c
}

// wait is the one waiter of the podman run process.
func (c *container) wait() {
	c.err = c.cmd.Wait()
	close(c.exited)
}

// remove removes the container, running or not, and waits for podman run
// to return.
func (c *container) remove() {
	if _, err := c.pm.try(time.Minute, "rm", "-f", "-t", "0", c.name); err != nil && !strings.Contains(err.Error(), "no such container") {
		c.t.Errorf("remove container %s: %v", c.name, err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		c.t.Errorf("podman run of %s did not return within 30s of its removal; killing it", c.name)
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// lines returns the container's output lines that contain s.
func (c *container) lines(s string) []string {
	var out []string
	for _, line := range strings.Split(c.output.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// waitFor waits until n output lines contain s and returns them. It fails
// the test when the container exits first or timeout (scaled) passes.
func (c *container) waitFor(s string, n int, timeout time.Duration) []string {
	c.t.Helper()
	var got []string
	c.waitUntil(fmt.Sprintf("%d lines holding %q", n, s), timeout, func() bool {
		got = c.lines(s)
		return len(got) >= n
	})
	return got[:n]
}

// waitForFirst waits for the first output line that contains one of subs
// and returns it.
func (c *container) waitForFirst(timeout time.Duration, subs ...string) string {
	c.t.Helper()
	var found string
	c.waitUntil(fmt.Sprintf("a line holding one of %q", subs), timeout, func() bool {
		for _, line := range strings.Split(c.output.String(), "\n") {
			for _, s := range subs {
				if strings.Contains(line, s) {
					found = line
					return true
				}
			}
		}
		return false
	})
	return found
}

// waitUntil polls done every 50 ms, and fails the test when the container
// exits first or timeout (scaled) passes.
func (c *container) waitUntil(what string, timeout time.Duration, done func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(testutil.Scaled(timeout))
	for !done() {
		select {
		case <-c.exited:
			if done() {
				return
			}
			c.t.Fatalf("container %s exited (%v) before %s; output:\n%s", c.name, c.err, what, c.output.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("container %s: no %s within %s; output:\n%s", c.name, what, testutil.Scaled(timeout), c.output.String())
		}
	}
}

// inspect returns a field of podman inspect, e.g. "{{.State.Pid}}".
func (c *container) inspect(format string) string {
	c.t.Helper()
	return c.pm.output(c.t, "inspect", "--format", format, c.name)
}

// pid returns the host pid of the container's first process.
func (c *container) pid() int {
	c.t.Helper()
	pid, err := strconv.Atoi(c.inspect("{{.State.Pid}}"))
	if err != nil || pid <= 0 {
		c.t.Fatalf("container %s has no pid (%v)", c.name, err)
	}
	return pid
}

// addr returns the loopback address that the container's TCP port is
// published on.
func (c *container) addr(port int) string {
	c.t.Helper()
	out := c.pm.output(c.t, "port", c.name, fmt.Sprintf("%d/tcp", port))
	addr, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		c.t.Fatalf("port %d of %s is published on %q, want 127.0.0.1", port, c.name, out)
	}
	return addr
}

// signal sends sig (a name, e.g. "HUP") with podman kill.
func (c *container) signal(sig string) {
	c.t.Helper()
	c.pm.output(c.t, "kill", "--signal", sig, c.name)
}

// stop runs podman stop (the image's STOPSIGNAL, then SIGKILL after 10 s,
// as docker stop) and returns how long it took and the exit code.
func (c *container) stop() (time.Duration, int) {
	c.t.Helper()
	start := time.Now()
	c.pm.output(c.t, "stop", "--time", "10", c.name)
	took := time.Since(start)
	select {
	case <-c.exited:
	case <-time.After(testutil.Scaled(30 * time.Second)):
		c.t.Fatalf("podman run of %s did not return within 30s of podman stop", c.name)
	}
	code, err := strconv.Atoi(c.inspect("{{.State.ExitCode}}"))
	if err != nil {
		c.t.Fatalf("exit code of %s: %v", c.name, err)
	}
	return took, code
}
