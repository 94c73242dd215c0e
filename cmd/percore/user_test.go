package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// uidOf reads the real uid of a process.
func uidOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatalf("no Uid line for %d", pid)
	return -1
}

func TestUserRunsWorkersAndPercoreUnprivileged(t *testing.T) {
	needNode(t)
	if os.Geteuid() != 0 {
		t.Skip("--user needs the test to run as root")
	}
	in := start(t, "--workers", "2", "--user", "nobody", "--control", "off", "--", "node", appJS())
	var env map[string]any
	getJSON(t, "http://"+in.addr+"/env", &env)
	for pid := range servingPids(t, in, 20) {
		if uid := uidOf(t, pid); uid != 65534 {
			t.Errorf("worker %d runs as uid %d, want 65534 (nobody)", pid, uid)
		}
	}
	if uid := uidOf(t, in.cmd.Process.Pid); uid != 65534 {
		t.Errorf("percore runs as uid %d after opening its ports, want 65534", uid)
	}
}

func TestUserFlagErrors(t *testing.T) {
	if _, err := parseConfig([]string{"--user", "no-such-user-percore", "node"}, nil); err == nil ||
		!strings.Contains(err.Error(), "--user") {
		t.Errorf("unknown user: %v", err)
	}
}

// In direct mode the sockets of the first workers are bound before percore
// drops to --user, and made that user's, so that the sockets of workers
// added later, bound after the drop, join their group.
func TestUserInDirectModeBindsEveryWorkersSocket(t *testing.T) {
	needNode(t)
	if os.Geteuid() != 0 {
		t.Skip("--user needs the test to run as root")
	}
	ctl := controlPath(t)
	in := start(t, "--mode", "direct", "--workers", "2", "--user", "nobody", "--control", ctl,
		"--", "node", appJS())
	waitDirectServing(t, in, 2, "start")
	out, err := exec.Command(percoreBin, "scale", "3", "--control", ctl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "workers=3") {
		t.Fatalf("percore scale 3: %v %s", err, out)
	}
	waitDirectServing(t, in, 3, "scale 3")
	if strings.Contains(in.logs.String(), "failed to start") {
		t.Errorf("a worker failed to start:\n%s", in.logs.String())
	}
}
