package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeOOM is a memory cgroup's OOM kill count that a test raises.
type fakeOOM struct {
	n    atomic.Uint64
	fail atomic.Bool
}

func (f *fakeOOM) Count() (uint64, error) {
	if f.fail.Load() {
		return 0, errors.New("no such file")
	}
	return f.n.Load(), nil
}

func TestOOMLedgerMatchesEachKillOnce(t *testing.T) {
	c := &fakeOOM{}
	c.n.Store(7) // kills before percore started are no one's
	l := newOOMLedger(c)
	now := time.Now()
	if l.take(now) {
		t.Fatal("a kill counted before the ledger was made was taken")
	}
	c.n.Add(2) // two workers killed together
	if !l.take(now) || !l.take(now.Add(time.Millisecond)) {
		t.Fatal("two kills counted together were not both taken")
	}
	if l.take(now) {
		t.Error("a third SIGKILL took a kill that was not counted")
	}

	c.n.Add(1) // a kill of another process, seen by the sampler
	l.observe(now)
	if l.take(now.Add(oomWindow + time.Second)) {
		t.Error("a kill counted long before the exit was taken")
	}

	c.fail.Store(true)
	c.n.Add(1)
	if l.take(now) {
		t.Error("a kill was taken while the count could not be read")
	}
	c.fail.Store(false)
	if !l.take(now) {
		t.Error("the kill counted meanwhile was lost")
	}

	if (newOOMLedger(nil)).take(now) {
		t.Error("a ledger without a counter took a kill")
	}
	c = &fakeOOM{}
	c.fail.Store(true)
	l = newOOMLedger(c) // not primed: the first count read is the start
	c.fail.Store(false)
	c.n.Store(3)
	if l.take(now) {
		t.Error("kills counted before the first read were taken")
	}
}

// TestOOMKillsOfWorkersKilledTogetherAreEachReported: two workers die by
// SIGKILL while the cgroup's OOM kill count grew by two. Each is reported
// as killed by the kernel OOM killer, with one log line and one end
// counted as "oom kill". Before, the first exit consumed both increments
// and the second was reported as a crash.
func TestOOMKillsOfWorkersKilledTogetherAreEachReported(t *testing.T) {
	oom := &fakeOOM{}
	rig := newRig(t, "serve", 2, func(c *Config) { c.OOM = oom })
	rig.waitAdded(t)
	rig.waitAdded(t)
	snap := rig.sup.Snapshot()
	oom.n.Add(2)
	for _, ws := range snap {
		if err := syscall.Kill(-ws.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	rig.waitAdded(t)
	rig.waitAdded(t)
	ends, _ := rig.sup.Counts()
	lines := strings.Count(rig.log.String(), "worker was killed by the kernel OOM killer")
	if ends[EndOOMKill] != 2 || ends["crash"] != 0 || lines != 2 {
		t.Errorf("two OOM kills: ends %v, %d log lines; want 2 \"oom kill\" and 2 lines", ends, lines)
	}
	for _, ws := range rig.sup.Snapshot() {
		if ws.LastReason != EndOOMKill.String() || ws.LastExit == nil || !ws.LastExit.OOMKilled {
			t.Errorf("worker %d: last exit %v, %q", ws.ID, ws.LastExit, ws.LastReason)
		}
	}

	if err := syscall.Kill(-rig.sup.Snapshot()[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rig.waitAdded(t)
	// Within a second of ready, the crash is a failed start.
	if ends, _ := rig.sup.Counts(); ends[EndOOMKill] != 2 || ends["crash"]+ends["boot failure"] != 1 {
		t.Errorf("a SIGKILL without an OOM kill: ends %v, want one crash more", ends)
	}
}

// TestOwnSIGKILLIsNoOOMKill: a worker that percore kills itself, here at
// the stop's deadline, is never taken for an OOM victim, even while a kill
// of another process waits to be matched.
func TestOwnSIGKILLIsNoOOMKill(t *testing.T) {
	oom := &fakeOOM{}
	rig := newRig(t, "ignore-term", 1, func(c *Config) { c.OOM = oom })
	rig.waitAdded(t)
	oom.n.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rig.sup.Stop(ctx)
	<-rig.errc
	rig.errc <- nil
	ws := rig.sup.Snapshot()[0]
	ends, _ := rig.sup.Counts()
	if ws.LastExit == nil || ws.LastExit.Signal != syscall.SIGKILL || ws.LastExit.OOMKilled ||
		ws.LastReason != EndStopped.String() || ends[EndOOMKill] != 0 {
		t.Errorf("killed by percore: %v, %q, ends %v", ws.LastExit, ws.LastReason, ends)
	}
	if strings.Contains(rig.log.String(), "OOM killer") {
		t.Error("percore's own SIGKILL was reported as an OOM kill")
	}
}

// TestGuardKillsAreNoOOMKills: the SIGKILLs that percore sends a worker's
// group through the memory guard, the cgroup check's kill of the biggest
// worker here, are marked as its own, as those of a stop are: while the
// memory cgroup counts an OOM kill of some other process, the worker's end
// is the guard's, not taken for the OOM killer's.
func TestGuardKillsAreNoOOMKills(t *testing.T) {
	oom := &fakeOOM{}
	cg := newFakeCgroup(256*mib, 100*mib)
	rig := newRig(t, "hog", 1, func(c *Config) {
		c.MaxBootFailures = 100
		c.Guard = Guard{Budget: 1 << 30, Hard: 1 << 40, Near: time.Hour}
		c.SampleInterval = time.Hour
		c.Cgroup = cg
		c.OOM = oom
	}, "FAKE_HOG_MB=8")
	rig.waitAdded(t)
	oom.n.Add(1)
	cg.set(248 * mib)
	cg.alarms <- struct{}{}
	ws := awaitWorkerEnd(t, rig, 0)
	cg.set(100 * mib)
	ends, _ := rig.sup.Counts()
	if ws.LastExit.Signal != syscall.SIGKILL || ws.LastExit.OOMKilled || !strings.Contains(ws.LastReason, "the cgroup holds") ||
		ends[EndOOMKill] != 0 || ends[EndMaxMemory] != 1 {
		t.Errorf("killed by the cgroup check: %v, %q, ends %v", ws.LastExit, ws.LastReason, ends)
	}
	if strings.Contains(rig.log.String(), "OOM killer") {
		t.Error("the guard's SIGKILL was reported as an OOM kill")
	}
}
