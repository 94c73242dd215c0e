package supervisor

import (
	"context"
	"errors"
	"github.com/percore/percore/internal/testutil"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// recordingRouter is a Router that remembers what it was told.
type recordingRouter struct {
	mu     sync.Mutex
	routed map[uint64]string
	added  chan string
}

func newRecordingRouter() *recordingRouter {
	return &recordingRouter{routed: map[uint64]string{}, added: make(chan string, 100)}
}

func (r *recordingRouter) Add(key uint64, slot int, addr string) {
	r.mu.Lock()
	r.routed[key] = addr
	r.mu.Unlock()
	r.added <- addr
}

func (r *recordingRouter) Drain(key uint64) <-chan struct{} {
	r.mu.Lock()
	delete(r.routed, key)
	r.mu.Unlock()
	c := make(chan struct{})
	close(c)
	return c
}

func (r *recordingRouter) Idle(key uint64) <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (r *recordingRouter) InFlight(key uint64) int { return 0 }

func (r *recordingRouter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.routed)
}

type testRig struct {
	sup    *Supervisor
	router *recordingRouter
	stdout *syncBuffer // the workers' output
	log    *syncBuffer // the supervisor's log
	errc   chan error
}

type syncBuffer = testutil.LockedBuffer

func newRig(t *testing.T, fake string, workers int, mutate func(*Config), env ...string) *testRig {
	t.Helper()
	argv, fullEnv := fakeCommand(fake, env...)
	w := NewWaiter()
	rig := &testRig{router: newRecordingRouter(), stdout: &syncBuffer{}, log: &syncBuffer{}, errc: make(chan error, 1)}
	cfg := Config{
		Command: argv, Env: fullEnv, Workers: workers, Launcher: w, Router: rig.router,
		Output:       NewOutput(OutputConfig{Stdout: rig.stdout, Stderr: rig.stdout}),
		Logger:       hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: io.MultiWriter(testWriter{t}, rig.log)}),
		ReadyTimeout: testutil.Scaled(5 * time.Second), BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	sup, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rig.sup = sup
	go func() { rig.errc <- sup.Run() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sup.Stop(ctx)
		select {
		case <-rig.errc:
		case <-time.After(10 * time.Second):
			t.Error("supervisor did not stop")
		}
		w.Close()
	})
	return rig
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (r *testRig) waitAdded(t *testing.T) string {
	t.Helper()
	select {
	case addr := <-r.router.added:
		return addr
	case <-time.After(testutil.Scaled(10 * time.Second)):
		t.Fatal("no worker became ready")
		return ""
	}
}

func TestWorkersBecomeReadyAndStop(t *testing.T) {
	rig := newRig(t, "serve", 2, nil)
	a, b := rig.waitAdded(t), rig.waitAdded(t)
	if a == b {
		t.Fatalf("two workers share %s", a)
	}
	snap := rig.sup.Snapshot()
	if len(snap) != 2 || snap[0].State != StateReady || snap[1].State != StateReady || snap[0].PID == 0 {
		t.Fatalf("snapshot = %+v", snap)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rig.sup.Stop(ctx)
	if err := <-rig.errc; err != nil {
		t.Fatalf("Run = %v, want nil after Stop", err)
	}
	rig.errc <- nil
	if rig.router.count() != 0 {
		t.Errorf("%d workers still routed after stop", rig.router.count())
	}
	for _, ws := range rig.sup.Snapshot() {
		if ws.State != StateStopped || ws.LastExit == nil || ws.LastExit.Code != 0 {
			t.Errorf("after stop: %+v", ws)
		}
	}
}

func TestCrashedWorkerIsRestarted(t *testing.T) {
	rig := newRig(t, "serve", 1, nil)
	rig.waitAdded(t)
	pid := rig.sup.Snapshot()[0].PID
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rig.waitAdded(t)
	ws := rig.sup.Snapshot()[0]
	if ws.PID == pid || ws.Restarts != 1 || ws.LastExit == nil || ws.LastExit.Signal != syscall.SIGKILL {
		t.Errorf("after kill: %+v", ws)
	}
}

func TestBootFailuresEndInCrashLoopError(t *testing.T) {
	rig := newRig(t, "exit", 2, nil, "FAKE_CODE=7")
	select {
	case err := <-rig.errc:
		var cl *CrashLoopError
		if !errors.As(err, &cl) {
			t.Fatalf("Run = %v, want *CrashLoopError", err)
		}
		if cl.Attempts != DefaultMaxBootFailures || !strings.Contains(cl.Last, "exit code 7") {
			t.Errorf("crash loop = %+v", cl)
		}
		if !strings.Contains(cl.Error(), "fatal: config missing") {
			t.Errorf("error lacks the worker's output: %v", cl)
		}
		rig.errc <- err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not give up")
	}
}

// TestSlowStartThenCrashIsACrashLoop: a worker that takes 1.5 s to start
// and dies 0.5 s after it is ready fails its start, since the minimum
// uptime counts from readiness: five in a row end Run with a
// CrashLoopError. Measured from the process's start, each of those lives
// passed the minimum uptime, and Run restarted the worker forever.
func TestSlowStartThenCrashIsACrashLoop(t *testing.T) {
	began := time.Now()
	rig := newRig(t, "slow-crash", 1, nil, "FAKE_SLOW=1500ms", "FAKE_LIVE=500ms")
	select {
	case err := <-rig.errc:
		var cl *CrashLoopError
		if !errors.As(err, &cl) {
			t.Fatalf("Run = %v, want *CrashLoopError", err)
		}
		if cl.Attempts != DefaultMaxBootFailures || !strings.Contains(cl.Last, "boot failure, exit code 1") {
			t.Errorf("crash loop = %+v", cl)
		}
		if !strings.Contains(cl.Error(), "lost the database connection") {
			t.Errorf("error lacks the worker's output: %v", cl)
		}
		t.Logf("gave up after %s: %v", time.Since(began).Round(time.Millisecond), cl)
		rig.errc <- err
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not give up within 60s: %+v", rig.sup.Snapshot())
	}
}

func TestWorkerListeningElsewhereIsNotReady(t *testing.T) {
	rig := newRig(t, "wrong-port", 1, func(c *Config) {
		c.ReadyTimeout = 300 * time.Millisecond
		c.MaxBootFailures = 2
	})
	select {
	case err := <-rig.errc:
		var cl *CrashLoopError
		if !errors.As(err, &cl) || !strings.Contains(cl.Last, "not ready in time") {
			t.Fatalf("Run = %v, want a crash loop of workers not ready in time", err)
		}
		rig.errc <- err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not give up")
	}
}

func TestStopKillsWorkerThatIgnoresTerm(t *testing.T) {
	rig := newRig(t, "ignore-term", 1, nil)
	rig.waitAdded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	rig.sup.Stop(ctx)
	<-rig.errc
	rig.errc <- nil
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stop took %s with a 500ms budget", took)
	}
	ws := rig.sup.Snapshot()[0]
	if e := ws.LastExit; e == nil || e.Signal != syscall.SIGKILL {
		t.Errorf("last exit = %v, want SIGKILL", e)
	}
	if ws.LastStop == nil || ws.LastStop.End != StopEndKilled {
		t.Errorf("stop record %+v, want killed at the deadline", ws.LastStop)
	}
	if !strings.Contains(rig.log.String(), "sending the stop signal") {
		t.Errorf("the worker was killed without the stop signal first:\n%s", rig.log.String())
	}
}

func TestHurriedStopSignalsThenKills(t *testing.T) {
	rig := newRig(t, "ignore-term", 1, nil)
	rig.waitAdded(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrHurry)
	start := time.Now()
	rig.sup.Stop(ctx)
	<-rig.errc
	rig.errc <- nil
	if took := time.Since(start); took < HurryGrace-100*time.Millisecond || took > HurryGrace+2*time.Second {
		t.Errorf("hurried stop took %s, want about %s", took, HurryGrace)
	}
}

func TestOutputKeepsLinesWhole(t *testing.T) {
	rig := newRig(t, "print", 3, nil, "FAKE_LINES=300", "FAKE_WIDTH=700")
	for i := 0; i < 3; i++ {
		rig.waitAdded(t)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(rig.stdout.String(), "partial-") < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(rig.stdout.String(), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "serving") || strings.HasPrefix(line, "partial-"):
		case len(line) == 700 && strings.Count(line, line[:1]) == 700:
			counts[line[:1]]++
		default:
			t.Fatalf("mixed or cut line (%d bytes): %.80q", len(line), line)
		}
	}
	for id := 0; id < 3; id++ {
		if counts[strconv.Itoa(id)] != 300 {
			t.Errorf("worker %d: %d whole lines, want 300", id, counts[strconv.Itoa(id)])
		}
	}
	if strings.Count(rig.stdout.String(), "partial-") != 3 {
		t.Errorf("partial lines without newline were not written: %q", rig.stdout.String()[len(rig.stdout.String())-200:])
	}
}

func TestListensOnIgnoresOtherProcessesSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	rig := newRig(t, "serve", 1, nil)
	rig.waitAdded(t)
	worker := rig.sup.Snapshot()[0].PID
	if ok, _ := listensOn(worker, port); ok && runtimeHasProc() {
		t.Errorf("the test's own listener on %d was taken for the worker's", port)
	}
	if ok, err := listensOn(worker, rig.sup.Snapshot()[0].Port); !ok {
		t.Errorf("the worker's own listener was not found: %v", err)
	}
}

// A scale that comes with a stop either adds its workers before the stop,
// which then stops them, or is refused: it never adds a slot after it.
func TestScaleAfterStopAddsNoSlot(t *testing.T) {
	rig := newRig(t, "serve", 1, nil)
	rig.waitAdded(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			if _, err := rig.sup.Scale(2 + i%3); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rig.sup.Stop(ctx)
	<-done
	before := len(rig.sup.slotList())
	if _, err := rig.sup.Scale(6); !errors.Is(err, errStopping) {
		t.Errorf("Scale after Stop = %v, want errStopping", err)
	}
	if after := len(rig.sup.slotList()); after != before {
		t.Errorf("Scale after Stop changed the slots from %d to %d", before, after)
	}
}
