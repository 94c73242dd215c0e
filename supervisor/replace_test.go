package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pids(r *testRig) map[int]bool {
	m := map[int]bool{}
	for _, ws := range r.sup.Snapshot() {
		m[ws.PID] = true
	}
	return m
}

func waitReload(t *testing.T, r *testRig, state string) ReloadStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st := r.sup.ReloadState(); st.State == state {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("reload state %+v, want %q", r.sup.ReloadState(), state)
	return ReloadStatus{}
}

func TestReloadReplacesEveryWorker(t *testing.T) {
	rig := newRig(t, "serve", 3, nil)
	for i := 0; i < 3; i++ {
		rig.waitAdded(t)
	}
	before := pids(rig)
	rig.sup.Reload()
	waitReload(t, rig, "done")
	after := pids(rig)
	for pid := range after {
		if before[pid] {
			t.Errorf("pid %d survived the reload (before %v, after %v)", pid, before, after)
		}
	}
	if rig.router.count() != 3 {
		t.Errorf("%d workers routed after the reload, want 3", rig.router.count())
	}
	for _, ws := range rig.sup.Snapshot() {
		if ws.Replaced != 1 || ws.Restarts != 0 || ws.LastReason != "reload" {
			t.Errorf("after reload: %+v", ws)
		}
	}
}

func TestFailedReloadKeepsOldWorkers(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken")
	rig := newRig(t, "fail-if", 2, func(c *Config) { c.ReadyTimeout = 2 * time.Second }, "FAKE_FAIL_FILE="+broken)
	rig.waitAdded(t)
	rig.waitAdded(t)
	before := pids(rig)
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := rig.sup.ReloadWait(ctx)
	if err != nil || st.State != "failed" {
		t.Fatalf("ReloadWait = %+v, %v; want a failed reload", st, err)
	}
	// Why, in percore's words; the new worker's output only in the log,
	// each line marked as the new worker's.
	if !strings.Contains(st.Error, "boot failure (exit code 1)") || !strings.Contains(st.Error, "percore's log") ||
		strings.Contains(st.Error, "new code is broken") {
		t.Errorf("failed reload: error %q; want why, where the output is, and not the output itself", st.Error)
	}
	if !strings.Contains(rig.log.String(), "new worker | new code is broken") {
		t.Errorf("the log lacks the new worker's output:\n%s", rig.log.String())
	}
	if st.Replaced != 0 {
		t.Errorf("failed reload: replaced %d, want 0", st.Replaced)
	}
	after := pids(rig)
	if len(after) != 2 || !after[firstKey(before)] {
		t.Errorf("old workers %v not kept: %v", before, after)
	}
	if rig.router.count() != 2 {
		t.Errorf("%d workers routed, want the 2 old ones", rig.router.count())
	}
	// With the code fixed, the next reload goes through.
	os.Remove(broken)
	st, err = rig.sup.ReloadWait(ctx)
	if err != nil || st.State != "done" || st.Replaced != 2 || st.Took() <= 0 {
		t.Fatalf("ReloadWait after the fix = %+v, %v; want done with 2 workers replaced", st, err)
	}
}

func firstKey(m map[int]bool) int {
	for k := range m {
		return k
	}
	return 0
}

func TestScaleUpAndDown(t *testing.T) {
	rig := newRig(t, "serve", 1, nil)
	rig.waitAdded(t)
	if n, err := rig.sup.ScaleBy(+1); err != nil || n != 2 {
		t.Fatalf("ScaleBy(+1) = %d, %v", n, err)
	}
	rig.waitAdded(t)
	if got := len(rig.sup.Snapshot()); got != 2 {
		t.Fatalf("%d slots, want 2", got)
	}
	if n, _ := rig.sup.ScaleBy(-5); n != 1 {
		t.Errorf("ScaleBy(-5) = %d, want 1 (never below one)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rig.router.count() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rig.router.count() != 1 {
		t.Errorf("%d workers routed after scaling to 1", rig.router.count())
	}
	if _, err := rig.sup.Scale(0); err == nil {
		t.Error("Scale(0) must fail")
	}
}

func TestWorkerAboveMaxMemoryIsRecycled(t *testing.T) {
	rig := newRig(t, "hog", 1, func(c *Config) {
		c.Guard = Guard{Budget: 64 << 20, Hard: 1 << 40}
		c.SpareSlot = true
		c.SampleInterval = 100 * time.Millisecond
	}, "FAKE_HOG_MB=100")
	rig.waitAdded(t)
	first := rig.sup.Snapshot()[0].PID
	rig.waitAdded(t) // the replacement
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ws := rig.sup.Snapshot()[0]
		if ws.PID != first && ws.Replaced >= 1 && strings.HasPrefix(ws.LastReason, "memory: ") {
			// Its replacement, as far over its budget, may be recycled
			// already: a memory loop, which is a restart.
			ends, _ := rig.sup.Counts()
			if ws.Replaced != 1 || ends["crash"]+ends["boot failure"] != 0 {
				t.Errorf("a recycle counted as a restart: %+v, ends %v", ws, ends)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("worker above max memory was not recycled: %+v", rig.sup.Snapshot()[0])
}

// TestReloadStopsWhenReplacementDiesOnProbation: new code that listens,
// then exits 300 ms later, passes readiness but not its probation. The
// reload fails at the first worker and stops there: both old workers are
// still routed, the failed replacement is not, and /status's error says
// why in percore's words. Without a probation the replacement took over
// at once and the reload went on to the next worker with the broken code.
func TestReloadStopsWhenReplacementDiesOnProbation(t *testing.T) {
	crash := filepath.Join(t.TempDir(), "crash")
	rig := newRig(t, "crash-if", 2, func(c *Config) { c.Probation = 2 * time.Second },
		"FAKE_CRASH_FILE="+crash, "FAKE_CRASH_AFTER=300ms")
	rig.waitAdded(t)
	rig.waitAdded(t)
	before := pids(rig)
	routed := rig.router.keys()
	if err := os.WriteFile(crash, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := rig.sup.ReloadWait(ctx)
	if err != nil || st.State != "failed" {
		t.Fatalf("ReloadWait = %+v, %v; want a failed reload", st, err)
	}
	if !strings.Contains(st.Error, "died on probation (exit code 1)") || !strings.Contains(st.Error, "percore's log") ||
		strings.Contains(st.Error, "database") || st.Replaced != 0 {
		t.Errorf("failed reload %+v; want died on probation, where the output is, not the output, 0 replaced", st)
	}
	if !strings.Contains(rig.log.String(), "new worker | lost the database connection") {
		t.Errorf("the log lacks the new worker's output:\n%s", rig.log.String())
	}
	if after := pids(rig); !sameSet(before, after) {
		t.Errorf("workers %v after the failed reload, want the old ones %v", after, before)
	}
	if now := rig.router.keys(); !sameSet(routed, now) {
		t.Errorf("routed %v after the failed reload, want the old workers %v only", now, routed)
	}
	for _, ws := range rig.sup.Snapshot() {
		if ws.State != StateReady || ws.Replaced != 0 || ws.Restarts != 0 {
			t.Errorf("after the failed reload: %+v", ws)
		}
	}

	os.Remove(crash)
	st, err = rig.sup.ReloadWait(ctx)
	if err != nil || st.State != "done" || st.Replaced != 2 || st.Took() < 4*time.Second {
		t.Fatalf("ReloadWait after the fix = %+v (took %s), %v; want done, 2 replaced, each after its 2s probation",
			st, st.Took(), err)
	}
}

func (r *recordingRouter) keys() map[uint64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[uint64]bool{}
	for k := range r.routed {
		out[k] = true
	}
	return out
}

func sameSet[K comparable](a, b map[K]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
