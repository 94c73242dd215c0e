package supervisor

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

var childLine = regexp.MustCompile(`child (\d+)`)

// detachedChild waits until the fake worker "detach" has said which child
// it started, and returns that child.
func (r *testRig) detachedChild(t *testing.T) proc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := childLine.FindStringSubmatch(r.stdout.String()); m != nil {
			pid, _ := strconv.Atoi(m[1])
			p, ok := readProc(pid)
			if !ok {
				t.Fatalf("the detached child %d is gone already", pid)
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not say which child it started; output:\n%s", r.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEnded fails the test unless p ends within timeout.
func waitEnded(t *testing.T, r *testRig, p proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for stillRuns(p) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs %s later; log:\n%s", p.pid, timeout, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otherProcess starts a process of the same user, in the same session as
// the workers, that is not theirs. It is killed when the test ends.
func otherProcess(t *testing.T) proc {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	p, ok := readProc(cmd.Process.Pid)
	if !ok {
		t.Fatal("sleep is gone already")
	}
	return p
}

func TestDetachedChildEndsWhenWorkerExits(t *testing.T) {
	rig := newRig(t, "detach", 1, nil)
	rig.waitAdded(t)
	child := rig.detachedChild(t)
	if child.pgid == child.ppid || child.sid != child.pid {
		t.Fatalf("the child is not detached: %+v", child)
	}
	other := otherProcess(t)
	worker := rig.sup.Snapshot()[0].PID
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil { // the worker alone: it crashes
		t.Fatal(err)
	}
	waitEnded(t, rig, child, 10*time.Second)
	if !strings.Contains(rig.log.String(), "worker left processes behind") {
		t.Errorf("no log line says the worker left a process behind; log:\n%s", rig.log.String())
	}
	rig.waitAdded(t) // restarted, with a child of its own
	second := rig.detachedChildAfter(t, child.pid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rig.sup.Stop(ctx)
	<-rig.errc
	rig.errc <- nil
	if stillRuns(second) {
		t.Errorf("the detached child %d of a stopped worker outlived Run", second.pid)
	}
	if !stillRuns(other) {
		t.Errorf("process %d, not a worker's, was ended", other.pid)
	}
}

// detachedChildAfter returns the child the worker names after the line
// naming pid.
func (r *testRig) detachedChildAfter(t *testing.T, pid int) proc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := childLine.FindAllStringSubmatch(r.stdout.String(), -1)
		if n := len(ms); n > 0 && ms[n-1][1] != strconv.Itoa(pid) {
			p, _ := strconv.Atoi(ms[n-1][1])
			if c, ok := readProc(p); ok {
				return c
			}
			t.Fatalf("the detached child %d is gone already", p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted worker did not say which child it started; output:\n%s", r.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitIgnoresTerm waits until process pid ignores SIGTERM, as its
// /proc/PID/status SigIgn mask says: a stop signal sent before would end it.
func awaitIgnoresTerm(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(testutil.Scaled(10 * time.Second))
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Fatalf("read the status of %d: %v", pid, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err == nil && mask&(1<<(uint(syscall.SIGTERM)-1)) != 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d does not ignore SIGTERM yet", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStopKillsDetachedChildThatIgnoresTerm(t *testing.T) {
	rig := newRig(t, "detach", 1, nil, "FAKE_CHILD_IGNORES_TERM=1")
	rig.waitAdded(t)
	child := rig.detachedChild(t)
	awaitIgnoresTerm(t, child.pid)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	rig.sup.Stop(ctx)
	<-rig.errc
	rig.errc <- nil
	if stillRuns(child) {
		t.Fatalf("the detached child %d that ignores SIGTERM outlived Run", child.pid)
	}
	if took := time.Since(began); took > 5*time.Second+LeftoverGrace {
		t.Errorf("the stop took %s", took)
	}
	if !strings.Contains(rig.log.String(), `sigkill=1`) {
		t.Errorf("no log line says the child needed SIGKILL; log:\n%s", rig.log.String())
	}
}
