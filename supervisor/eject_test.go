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
