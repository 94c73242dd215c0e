//go:build unix

package jsruntime

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runTimeout bounds one run of a runtime in the tests.
const runTimeout = 60 * time.Second

// runtimeOutput is what the tests' JavaScript programs print: V8's heap
// limit, the PORT they read and, from node, whether source maps are on.
type runtimeOutput struct {
	LimitMiB   float64 `json:"limitMiB"`
	Port       string  `json:"port"`
	SourceMaps bool    `json:"sourceMaps"`
}

// toolBinary returns the path of a runtime that scripts/install-tools puts
// in .tools/bin. It skips the test when the runtime is missing, unless CI
// is set: CI installs the runtimes first, so there a missing one fails.
// Off linux-x64, where install-tools installs nothing, it always skips.
func toolBinary(t *testing.T, name string) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("scripts/install-tools installs %s only on linux-x64", name)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, ".tools", "bin", name)
	if _, err := os.Stat(path); err != nil {
		missing(t, name+" is not installed at "+path+" (run scripts/install-tools)")
	}
	return path
}

// pathBinary returns the path of a program on PATH, skipping the test when
// there is none, unless CI is set.
func pathBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" is not on PATH")
	}
	return path
}

// missing skips the test for a missing program, or fails it in CI.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must have it", why)
	}
	t.Skip(why)
}

// baseEnv returns the test process's environment without the variables
// that set a runtime's heap or port, with PORT=port and with the runtimes'
// update checks and colours off.
func baseEnv(port int) []string {
	var env []string
	for _, entry := range os.Environ() {
		name, _, _ := strings.Cut(entry, "=")
		switch {
		case name == "PORT", name == nodeOptionsVar, name == denoV8FlagsVar,
			strings.HasPrefix(name, "BUN_JSC_"):
			continue
		}
		env = append(env, entry)
	}
	return append(env, "PORT="+strconv.Itoa(port), "NO_COLOR=1",
		"DENO_NO_UPDATE_CHECK=1", "DENO_NO_PROMPT=1", "DO_NOT_TRACK=1",
		"npm_config_update_notifier=false", "npm_config_fund=false")
}

// command returns a command for a prepared worker, run in dir. It runs in a
// process group of its own, which is killed as a whole when ctx ends.
func command(ctx context.Context, w Worker, dir string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.Argv[0], w.Argv[1:]...)
	cmd.Env, cmd.Dir = w.Env, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a prepared worker to its end in dir and returns what it printed
// on its last line, decoded.
func run(t *testing.T, w Worker, dir string) runtimeOutput {
	t.Helper()
	out, err := runRaw(t, w, dir)
	if err != nil {
		t.Fatalf("%q: %v\n%s", w.Argv, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got runtimeOutput
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("%q printed %q: %v", w.Argv, out, err)
	}
	return got
}

// runRaw runs a prepared worker to its end in dir and returns its standard
// output and error, together.
func runRaw(t *testing.T, w Worker, dir string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	return command(ctx, w, dir).CombinedOutput()
}

// start starts a prepared worker in dir and stops it, with its children,
// when the test ends.
func start(t *testing.T, w Worker, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := command(ctx, w, dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %q: %v", w.Argv, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
}

// prepare runs Prepare and fails the test on an error.
func prepare(t *testing.T, w Worker, o Options) (Worker, Applied) {
	t.Helper()
	out, applied, err := Prepare(w, o)
	if err != nil {
		t.Fatalf("Prepare(%q): %v", w.Argv, err)
	}
	t.Logf("prepared %q %+v", out.Argv, applied)
	return out, applied
}

// writeFiles writes files (name to content) into a new temporary folder
// and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand the same free port out twice in a row: a
		// test that asks for two (the app's and its ping listener's)
		// must get two.
		if !given[port] {
			given[port] = true
			return port
		}
	}
}

// given holds the ports freePort returned, so it never returns one twice.
var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// checkLimit checks that a heap limit in MiB is in [low, high).
func checkLimit(t *testing.T, what string, got float64, low, high float64) {
	t.Helper()
	if got < low || got >= high {
		t.Errorf("%s: heap_size_limit %.0f MiB, want at least %.0f and below %.0f", what, got, low, high)
	}
}

// itoa formats a port for comparison with what a program printed.
func itoa(n int) string {
	return strconv.Itoa(n)
}
