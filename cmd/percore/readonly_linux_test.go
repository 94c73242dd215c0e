//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readOnlyRoot is a wrapper that runs percore in a mount namespace of its
// own where /tmp (and, unless shm, /dev/shm too) are read-only, as in
// docker run --read-only.
func readOnlyRoot(t *testing.T, shm bool) []string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed")
	}
	script := `mount -t tmpfs -o ro tmpfs /tmp || exit 99; `
	if !shm {
		script += `mount -t tmpfs -o ro tmpfs /dev/shm || exit 99; `
	}
	return []string{"unshare", "-m", "--propagation", "private", "sh", "-c", script + `exec "$@"`, "sh"}
}

// outsideTmp copies the percore under test and the test app out of /tmp,
// which the read-only root hides (the checkout itself may be below /tmp),
// and returns their paths.
func outsideTmp(t *testing.T) (bin, app string) {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "percore-readonly-")
	if err != nil {
		t.Skipf("no directory outside /tmp for the binary: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, f := range []struct{ from, to string }{{percoreBin, "percore"}, {appJS(), "app.js"}} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "percore"), filepath.Join(dir, "app.js")
}

// On a read-only root with /dev/shm, as container runtimes mount it, the
// preload goes there and percore runs as anywhere: its workers' answers are
// proven (kept-alive connections reused) and nothing is logged about it.
func TestReadOnlyRootKeepsThePreloadInDevShm(t *testing.T) {
	needNode(t)
	bin, app := outsideTmp(t)
	in := launchBin(t, bin, []string{"TMPDIR=/tmp"}, readOnlyRoot(t, true), "--workers", "1", "--control", "off", "--", "node", app)
	in.waitLog("worker ready", 30*time.Second)
	for i := 0; i < 3; i++ {
		if code := status(t, "http://"+in.addr+"/"); code != 200 {
			t.Fatalf("GET / = %d", code)
		}
	}
	if strings.Contains(in.logs.String(), "without percore's preload") {
		t.Errorf("percore ran without its preload although /dev/shm was writable:\n%s", in.logs.String())
	}
}

// With no writable directory at all, percore still serves: it says once
// that it runs the workers without its preload, and why.
func TestNoWritableDirectoryStillServes(t *testing.T) {
	needNode(t)
	bin, app := outsideTmp(t)
	in := launchBin(t, bin, []string{"TMPDIR=/tmp"}, readOnlyRoot(t, false), "--workers", "1", "--control", "off", "--", "node", app)
	in.waitLog("worker ready", 30*time.Second)
	if code := status(t, "http://"+in.addr+"/"); code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	in.findLog("running the workers without percore's preload", 10*time.Second)
}
