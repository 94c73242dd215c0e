package supervisor

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitSnapshot waits until ok holds for slot 0's status.
func waitSnapshot(t *testing.T, r *testRig, what string, ok func(WorkerStatus) bool) WorkerStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ws := r.sup.Snapshot()[0]; ok(ws) {
			return ws
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: slot 0 is %+v", what, r.sup.Snapshot()[0])
	return WorkerStatus{}
}

// An ejection of the serving worker that races its replacement must end
// that worker only: the replacement is shown ready, stays routed, and its
// own later crash is labelled a crash, not with the ejection's reason.
func TestEjectWhileReplacing(t *testing.T) {
	slow := filepath.Join(t.TempDir(), "slow")
	rig := newRig(t, "slow-if", 1, func(c *Config) { c.MinUptime = time.Millisecond },
		"FAKE_SLOW_FILE="+slow, "FAKE_SLOW=300ms")
	rig.waitAdded(t)
	old := rig.sup.Snapshot()[0].Key
	if err := os.WriteFile(slow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rig.sup.Reload()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rig.sup.Eject(old, "health check")
			time.Sleep(time.Millisecond)
		}
	}()
	ws := waitSnapshot(t, rig, "the replacement serves", func(ws WorkerStatus) bool {
		return ws.State == StateReady && ws.Key != old && ws.Key != 0
	})
	// Keep ejecting the old key a while after the replacement is routed.
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if now := rig.sup.Snapshot()[0]; now.State != StateReady || now.Key != ws.Key {
		t.Fatalf("after stale ejections the replacement shows %+v, want ready with key %d", now, ws.Key)
	}
	if rig.router.count() != 1 {
		t.Fatalf("%d workers routed, want the replacement", rig.router.count())
	}
	if err := syscall.Kill(-ws.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := waitSnapshot(t, rig, "the crash is recorded", func(now WorkerStatus) bool {
		return now.LastExit != nil && now.LastExit.Signal == syscall.SIGKILL
	})
	if after.LastReason != "crash" {
		t.Errorf("the replacement's crash is labelled %q, want %q", after.LastReason, "crash")
	}
}

// A worker's memory is measured the moment it is ready, not at the
// sampler's next tick: /status never shows a serving worker at 0 bytes.
func TestRSSMeasuredWhenReady(t *testing.T) {
	if !runtimeHasProc() {
		t.Skip("no /proc to measure memory from")
	}
	rig := newRig(t, "serve", 1, func(c *Config) { c.SampleInterval = time.Hour })
	rig.waitAdded(t)
	if ws := rig.sup.Snapshot()[0]; ws.State != StateReady || ws.RSS == 0 {
		t.Errorf("a worker just ready shows %+v, want its RSS", ws)
	}
}

// An ejection by the proxy shows on the slot until it ends, and counts the
// worker out of ReadyWorkers: one truth for routing and status.
func TestOutOfRotationShowsOnSlot(t *testing.T) {
	rig := newRig(t, "serve", 2, nil)
	rig.waitAdded(t)
	rig.waitAdded(t)
	ws := rig.sup.Snapshot()[0]
	rig.sup.OutOfRotation(ws.Key, time.Now().Add(time.Hour))
	now := waitSnapshot(t, rig, "the ejection shows", func(ws WorkerStatus) bool { return ws.NotRouted != "" })
	if now.NotRouted != NotRoutedEjected || now.State != StateReady || rig.sup.ReadyWorkers() != 1 {
		t.Errorf("out of rotation: %+v, %d ready workers", now, rig.sup.ReadyWorkers())
	}
	rig.sup.OutOfRotation(ws.Key, time.Now())
	waitSnapshot(t, rig, "the ejection ends", func(ws WorkerStatus) bool { return ws.NotRouted == "" })
	if n := rig.sup.ReadyWorkers(); n != 2 {
		t.Errorf("%d ready workers after the ejection ended, want 2", n)
	}
}
