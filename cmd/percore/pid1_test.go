package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type orphanInfo struct {
	Orphan int `json:"orphan"`
	PID    int `json:"pid"`
}

// childrenOf lists the pids whose parent is pid, with their states.
func childrenOf(pid int) map[int]byte {
	out := map[int]byte{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out[p] = f[0][0]
		}
	}
	return out
}

// noZombieChildren waits until pid has no zombie children.
func noZombieChildren(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		zombies := 0
		for _, state := range childrenOf(pid) {
			if state == 'Z' {
				zombies++
			}
		}
		if zombies == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d zombie children of percore (pid %d) are not reaped", zombies, pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSubreaperReapsOrphanedGrandchildren(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS())
	var o orphanInfo
	getJSON(t, "http://"+in.addr+"/orphan", &o)
	if o.Orphan == 0 {
		t.Fatal("the app did not report its orphan")
	}
	if ppid := parentOf(t, o.Orphan); ppid != in.cmd.Process.Pid {
		t.Errorf("orphan %d was reparented to %d, want percore %d (child subreaper)", o.Orphan, ppid, in.cmd.Process.Pid)
	}
	time.Sleep(500 * time.Millisecond) // the orphan sleeps 0.3s
	noZombieChildren(t, in.cmd.Process.Pid)
	if alive(o.Orphan) {
		t.Errorf("orphan %d still exists", o.Orphan)
	}
}

func TestPID1ReapsOrphansAndStopsOnTERM(t *testing.T) {
	needNode(t)
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("cannot create a PID namespace here (unshare: %v)", err)
	}
	in := launchVia(t, []string{"unshare", "--pid", "--fork", "--mount-proc"}, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	pid1 := 0
	for p := range childrenOf(in.cmd.Process.Pid) {
		pid1 = p
	}
	if pid1 == 0 {
		t.Fatal("cannot find percore under unshare")
	}
	for i := 0; i < 5; i++ {
		var o orphanInfo
		getJSON(t, "http://"+in.addr+"/orphan", &o)
	}
	time.Sleep(500 * time.Millisecond)
	noZombieChildren(t, pid1)

	if err := syscall.Kill(pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("percore as PID 1 exited %d after SIGTERM, want 0; logs:\n%s", code, in.logs.String())
	}
	if !strings.Contains(in.logs.String(), "stopping gracefully") {
		t.Error("PID 1 did not handle SIGTERM gracefully")
	}
}
