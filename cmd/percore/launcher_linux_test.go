package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// TestLauncherKilled stands sh in for the npm launcher: it gives percore
// its pid in PERCORE_LAUNCHER_PID and is then SIGKILLed. percore stops
// gracefully within its shutdown timeout, frees its ports and leaves
// nothing behind; its worker never sees the variable.
func TestLauncherKilled(t *testing.T) {
	needNode(t)
	const budget = 20 * time.Second
	// sh stays percore's parent: a command comes after percore's.
	in := launchVia(t, []string{"sh", "-c", launcherPIDVar + `=$$ "$@"; :`, "sh"},
		"--workers", "1", "--shutdown-timeout", budget.String(), "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)
	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)
	percore := parentOf(t, h.PID)
	sh := in.cmd.Process.Pid
	if got := parentOf(t, percore); got != sh {
		t.Fatalf("percore's parent is pid %d, want sh's %d", got, sh)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", h.PID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(env, []byte("\x00"+launcherPIDVar+"=")) || bytes.HasPrefix(env, []byte(launcherPIDVar+"=")) {
		t.Errorf("the worker's environment holds %s", launcherPIDVar)
	}
	start := time.Now()
	if err := syscall.Kill(sh, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// in.exited closes once sh, percore and the worker, which share its
	// stderr, have all exited.
	in.wait(testutil.Scaled(budget + 20*time.Second))
	took := time.Since(start)
	t.Logf("percore and its worker gone %s after the SIGKILL", took.Round(time.Millisecond))
	in.findLog("the launcher that started percore has ended", time.Second)
	stopping := in.findLog("stopping gracefully", time.Second)
	in.findLog("stopped", time.Second)
	if got, _ := stopping["signal"].(string); got != "terminated" {
		t.Errorf("percore stopped on %q, want terminated; logs:\n%s", got, in.logs.String())
	}
	if strings.Contains(in.logs.String(), "stopping fast") {
		t.Errorf("percore stopped fast; logs:\n%s", in.logs.String())
	}
	if took > testutil.Scaled(budget) {
		t.Errorf("percore took %s to stop, more than its shutdown timeout %s", took, budget)
	}
	for _, addr := range []string{in.addr, in.admin} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("after percore stopped, %s is not free: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestLauncherGoneAtStart: a PERCORE_LAUNCHER_PID that is not percore's
// parent means the launcher ended before percore could follow it, and
// percore stops at once; one that is no pid is a usage error.
func TestLauncherGoneAtStart(t *testing.T) {
	needNode(t)
	t.Run("not the parent", func(t *testing.T) {
		in := launchBin(t, percoreBin, []string{launcherPIDVar + "=1"}, nil, "--workers", "1", "--", "node", appJS())
		if code := in.wait(testutil.Scaled(30 * time.Second)); code != exitOK {
			t.Errorf("exit code %d, want %d; logs:\n%s", code, exitOK, in.logs.String())
		}
		in.findLog("the launcher that started percore has ended", time.Second)
		in.findLog("stopped before the workers started", time.Second)
	})
	t.Run("not a pid", func(t *testing.T) {
		cmd := exec.Command(percoreBin, "--", "node", appJS())
		cmd.Env = append(os.Environ(), launcherPIDVar+"=npx")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), launcherPIDVar) {
			t.Errorf("percore with %s=npx: %v, %q; want exit %d and a message naming the variable", launcherPIDVar, err, out, exitUsage)
		}
	})
}
