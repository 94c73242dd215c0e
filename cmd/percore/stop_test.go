package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/percore/percore/supervisor"
)

// TestShutdownSignalsEveryWorkerBeforeKill stops two workers, one of them
// busy with a request that outlasts the budget: the idle one gets the stop
// signal at once and exits 0, the busy one gets it before the deadline and
// is killed at the deadline, with its request counted as cut. Until percore
// kept a share of the budget for the workers' handlers, a proxy-mode stop
// spent the whole budget on the proxy's drain and then SIGKILLed every
// worker, idle ones included, without a stop signal.
func TestShutdownSignalsEveryWorkerBeforeKill(t *testing.T) {
	needNode(t)
	for _, mode := range []string{"proxy", "direct"} {
		t.Run(mode, func(t *testing.T) { testStopWithABusyWorker(t, mode) })
	}
}

// slowAnswer is what the client of the request in flight got.
type slowAnswer struct {
	status int
	body   string
	err    error
}

func testStopWithABusyWorker(t *testing.T, mode string) {
	const budget = 3 * time.Second
	mark := fmt.Sprintf("stopmark%d", time.Now().UnixNano())
	in := launchBin(t, percoreBin, []string{"TERM_MARK=" + mark}, nil,
		"--mode", mode, "--workers", "2", "--shutdown-timeout", budget.String(), "--", "node", appJS())
	pids := map[int]bool{}
	for _, pid := range waitReady(t, "http://"+in.admin+"/status", 2) {
		pids[pid] = true
	}

	got := make(chan slowAnswer, 1)
	go func() {
		resp, err := freshClient.Get("http://" + in.addr + "/slow?ms=10000")
		if err != nil {
			got <- slowAnswer{err: err}
			return
		}
		got <- slowAnswer{status: resp.StatusCode, body: readAll(resp)}
	}()
	busy := waitMarkPID(t, in, mark+" slow ", 20*time.Second)
	if !pids[busy] {
		t.Fatalf("the slow request went to pid %d, not one of the workers %v", busy, pids)
	}
	idle := 0
	for pid := range pids {
		if pid != busy {
			idle = pid
		}
	}

	stopped := time.Now()
	in.signal(syscall.SIGTERM)

	// The idle worker's handler runs at once, and it exits 0 well before
	// the deadline.
	waitMark(t, in, fmt.Sprintf("%s term %d", mark, idle), budget)
	if d := time.Since(stopped); d > budget/2 {
		t.Errorf("the idle worker got its stop signal %s after SIGTERM, want at once", d)
	}
	idleEnd := waitWorkerLog(t, in, "worker stopped", idle, budget)
	if d := time.Since(stopped); d > budget/2 {
		t.Errorf("the idle worker stopped %s after SIGTERM, want well before the %s deadline", d, budget)
	}
	if idleEnd["exit"] != "exit code 0" || idleEnd["stop"] != "drained, then signalled" {
		t.Errorf("idle worker's end: %v, want exit code 0, drained, then signalled", idleEnd)
	}
	// /status, which answers until the end, says so too.
	for _, w := range getStatus(t, in).Workers {
		switch e := w.LastExit; {
		case w.PID == busy && w.State != "draining":
			t.Errorf("/status shows the busy worker %s during the stop, want draining", w.State)
		case w.PID == busy:
		case e == nil || e.Code != 0 || e.Stop == nil || e.Stop.How != "drained, then signalled" || e.Stop.Cut != 0:
			t.Errorf("/status shows the idle worker's end as %s, want exit 0, drained, then signalled", jsonText(e))
		}
	}

	// The busy worker's handler runs before the deadline (a killed
	// process prints nothing): in proxy mode once only the handlers' share
	// of the budget is left, in direct mode, where percore does not see
	// requests, at once. The worker is killed at the deadline.
	waitMark(t, in, fmt.Sprintf("%s term %d", mark, busy), 2*budget)
	if d := time.Since(stopped); mode == "proxy" && d < budget-supervisor.HandlerShare(budget)-300*time.Millisecond {
		t.Errorf("the busy worker got its stop signal %s after SIGTERM, want when %s of %s are left",
			d, supervisor.HandlerShare(budget), budget)
	}
	killed := waitWorkerLog(t, in, "killing worker process group", busy, 2*budget)
	if d := time.Since(stopped); d < budget-500*time.Millisecond {
		t.Errorf("the busy worker was killed %s after SIGTERM, before the %s deadline", d, budget)
	}
	unit := "requests_cut"
	if mode == "direct" {
		unit = "connections_cut"
	}
	if killed[unit] != float64(1) {
		t.Errorf("kill log line: %v, want %s 1", killed, unit)
	}
	busyEnd := waitWorkerLog(t, in, "worker stopped", busy, 2*budget)
	if busyEnd["exit"] != "signal killed" || busyEnd["stop"] != "killed at the deadline" || busyEnd[unit] != float64(1) {
		t.Errorf("busy worker's end: %v, want signal killed, killed at the deadline, %s 1", busyEnd, unit)
	}
	if code := in.wait(2 * budget); code != 0 {
		t.Errorf("exit code %d, want 0; logs:\n%s", code, in.logs.String())
	}

	// The request in flight is not dropped silently: in proxy mode its
	// client gets 502; in direct mode the connection was the worker's own,
	// and it ends with the worker.
	a := <-got
	t.Logf("%s mode: the request in flight at the deadline got status %d %q, error %v", mode, a.status, a.body, a.err)
	if mode == "proxy" && a.status != http.StatusBadGateway {
		t.Errorf("request cut at the deadline: status %d, error %v; want 502", a.status, a.err)
	}
	if mode == "direct" && a.err == nil {
		t.Errorf("request cut at the deadline in direct mode: status %d, want the connection closed", a.status)
	}
}

// A second SIGTERM during a stop makes it fast: the busy worker gets the
// stop signal at once and is killed HurryGrace later, long before the
// budget ends, and its request still gets 502.
func TestShutdownSecondSIGTERMStopsFast(t *testing.T) {
	needNode(t)
	const budget = 30 * time.Second
	mark := fmt.Sprintf("fastmark%d", time.Now().UnixNano())
	in := launchBin(t, percoreBin, []string{"TERM_MARK=" + mark}, nil,
		"--workers", "2", "--shutdown-timeout", budget.String(), "--", "node", appJS())
	waitReady(t, "http://"+in.admin+"/status", 2)
	got := make(chan slowAnswer, 1)
	go func() {
		resp, err := freshClient.Get("http://" + in.addr + "/slow?ms=60000")
		if err != nil {
			got <- slowAnswer{err: err}
			return
		}
		got <- slowAnswer{status: resp.StatusCode, body: readAll(resp)}
	}()
	busy := waitMarkPID(t, in, mark+" slow ", 20*time.Second)
	stopped := time.Now()
	in.signal(syscall.SIGTERM)
	in.waitLog("worker stopped", budget/2) // the idle one
	if strings.Contains(in.stdout.String(), fmt.Sprintf("%s term %d", mark, busy)) {
		t.Fatal("the busy worker got the stop signal at once in a graceful stop")
	}
	in.signal(syscall.SIGTERM)
	waitMark(t, in, fmt.Sprintf("%s term %d", mark, busy), budget/2)
	end := waitWorkerLog(t, in, "worker stopped", busy, budget/2)
	if end["stop"] != "killed at the deadline" || end["requests_cut"] != float64(1) {
		t.Errorf("busy worker's end in a fast stop: %v, want killed at the deadline, requests_cut 1", end)
	}
	if code := in.wait(budget / 2); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if d := time.Since(stopped); d > budget/3 {
		t.Errorf("a fast stop took %s of a %s budget", d, budget)
	}
	if a := <-got; a.status != http.StatusBadGateway {
		t.Errorf("request cut by a fast stop: status %d, error %v; want 502", a.status, a.err)
	}
}

// waitMark waits until the workers' output holds line.
func waitMark(t *testing.T, in *instance, line string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(in.stdout.String(), line+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no line %q from a worker within %s; output:\n%s\nlogs:\n%s", line, timeout, in.stdout.String(),
				in.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMarkPID waits for a worker's line that starts with prefix and ends
// with a pid, and returns the pid.
func waitMarkPID(t *testing.T, in *instance, prefix string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := in.stdout.String()
		if i := strings.Index(out, prefix); i >= 0 {
			rest := out[i+len(prefix):]
			if j := strings.IndexByte(rest, '\n'); j >= 0 {
				pid, err := strconv.Atoi(rest[:j])
				if err != nil {
					t.Fatalf("worker line %q: %v", out[i:i+len(prefix)+j], err)
				}
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q from a worker within %s; output:\n%s", prefix, timeout, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitWorkerLog returns the first log line, so far or within timeout, whose
// message starts with msg and whose pid is pid.
func waitWorkerLog(t *testing.T, in *instance, msg string, pid int, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		in.mu.Lock()
		for _, m := range in.seen {
			if s, _ := m["@message"].(string); strings.HasPrefix(s, msg) && m["pid"] == float64(pid) {
				in.mu.Unlock()
				return m
			}
		}
		in.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q for pid %d within %s; logs:\n%s", msg, pid, timeout, in.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The proxy's drain ends answerGrace after the last worker is gone, not
// before, and ending it early stops its timer.
func TestShutdownDrainEndsAGraceAfterTheWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := make(chan struct{})
		ctx, end := graceAfter(gone, time.Second)
		defer end()
		time.Sleep(time.Hour)
		if ctx.Err() != nil {
			t.Fatal("the drain ended while workers still run")
		}
		close(gone)
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if ctx.Err() != nil {
			t.Fatal("the drain ended before its grace")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if ctx.Err() == nil {
			t.Fatal("the drain did not end after its grace")
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, end := graceAfter(make(chan struct{}), time.Second)
		end() // returns once the goroutine has ended: synctest fails on one left
		if ctx.Err() == nil {
			t.Fatal("end did not end the drain")
		}
	})
}

// jsonText is v as JSON, for messages.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
