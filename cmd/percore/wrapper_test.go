package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWrapperGrandchildrenDoNotSurvive runs the app behind a shell that
// forks node, kills only the shell, and then stops percore: neither the
// orphaned node nor any other process may outlive percore.
func TestWrapperGrandchildrenDoNotSurvive(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "sh", "-c", "node "+appJS()+"; exit 1")
	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)
	node := h.PID
	shell := parentOf(t, node)
	if err := syscall.Kill(shell, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the wrapper shell: %v", err)
	}
	in.waitLog("worker exited", 10*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for alive(node) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d outlived its wrapper shell %d", node, shell)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.waitLog("worker ready", 20*time.Second)
	getJSON(t, "http://"+in.addr+"/", &h)
	if h.PID == node {
		t.Fatalf("the old node %d still answers", node)
	}
	in.signal(syscall.SIGTERM)
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	// cleanup checks that nothing started by percore is left.
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !isZombie(pid)
}
