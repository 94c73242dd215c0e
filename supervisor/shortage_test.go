package supervisor

import (
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// shortLauncher fails its first fails starts the way pipe2 fails when
// percore has no descriptor left, then starts through next.
type shortLauncher struct {
	next  Launcher
	fails atomic.Int64
}

func (l *shortLauncher) Start(cmd *exec.Cmd) (int, <-chan Exit, error) {
	if l.fails.Add(-1) >= 0 {
		return 0, nil, os.NewSyscallError("pipe2", syscall.EMFILE)
	}
	return l.next.Start(cmd)
}

// TestStartOutOfDescriptorsIsNotACrashLoop: a worker that cannot be
// started because percore is out of descriptors is retried with backoff,
// and the failures do not count toward the crash-loop give-up.
func TestStartOutOfDescriptorsIsNotACrashLoop(t *testing.T) {
	var sl *shortLauncher
	rig := newRig(t, "serve", 1, func(c *Config) {
		sl = &shortLauncher{next: c.Launcher}
		sl.fails.Store(8)
		c.Launcher = sl
		c.MaxBootFailures = 2
	})
	select {
	case <-rig.router.added:
	case err := <-rig.errc:
		rig.errc <- err
		t.Fatalf("Run = %v while percore was out of descriptors, want a retry until the worker starts", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no worker became ready")
	}
	if n := sl.fails.Load(); n >= 0 {
		t.Fatalf("%d failures left unused", n+1)
	}
	ends, _ := rig.sup.Counts()
	if ends[EndShortage] != 8 || ends["start failed"] != 0 {
		t.Errorf("ends = %v, want %d %q and no failed start", ends, 8, EndShortage)
	}
}
