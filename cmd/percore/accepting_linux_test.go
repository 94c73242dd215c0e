//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/health"
	"github.com/percore/percore/internal/testutil"
	"golang.org/x/sys/unix"
)

// readyzVerbose returns /readyz?verbose's code and body.
func readyzVerbose(t *testing.T, in *instance) (int, string) {
	t.Helper()
	resp, err := client.Get("http://" + in.admin + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(resp)
}

// workerOf returns slot id's entry in st.
func workerOf(st health.Status, id int) health.WorkerStatus {
	for _, w := range st.Workers {
		if w.ID == id {
			return w
		}
	}
	return health.WorkerStatus{}
}

// A worker out of file descriptors (a client holds idle connections open
// until the worker's limit) serves its pings no more than new connections,
// which node resets. percore sees it from the worker's descriptors: the
// slot leaves readiness and new connections go to the other worker, until
// the idle connections close.
func TestDirectModeWorkerOutOfDescriptorsTakesNoNewConnections(t *testing.T) {
	needNode(t)
	in := start(t, "--mode", "direct", "--workers", "2", "--ready-min", "2", "--health-interval", "off",
		"--", "node", appJS())
	waitDirectServing(t, in, 2, "start")
	pid := workerOf(getStatus(t, in), 0).PID
	open, _, err := countFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(open + 16)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatalf("lower worker 0's descriptor limit: %v", err)
	}
	t.Logf("worker 0 (pid %d): %d descriptors open, limit lowered to %d", pid, open, limit)

	// Idle connections, spread by the kernel over both workers, until worker
	// 0 has none left (about 16 of them reach it; the rest go to worker 1 or are reset).
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	deadline := time.Now().Add(testutil.Scaled(30 * time.Second))
	began := time.Now()
	var w0 health.WorkerStatus
	for len(idle) < 400 && time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", in.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(idle), err)
		}
		idle = append(idle, c)
		if len(idle)%4 == 0 {
			if w0 = workerOf(getStatus(t, in), 0); w0.NotRouted == "not accepting" {
				break
			}
		}
	}
	for w0.NotRouted != "not accepting" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		w0 = workerOf(getStatus(t, in), 0)
	}
	if w0.NotRouted != "not accepting" || w0.Ready || !strings.Contains(w0.NotAccepting, "out of file descriptors") {
		t.Fatalf("after %d idle connections worker 0 = ready %v, not_routed %q, not_accepting %q; want not "+
			"accepting, out of file descriptors", len(idle), w0.Ready, w0.NotRouted, w0.NotAccepting)
	}
	t.Logf("after %d idle connections (%s): worker 0 %s: %s", len(idle), time.Since(began).Round(time.Millisecond),
		w0.NotRouted, w0.NotAccepting)
	code, body := readyzVerbose(t, in)
	if code != 503 || !strings.Contains(body, "1 of the 2 workers needed are ready") ||
		!strings.Contains(body, "worker 0 not accepting: out of file descriptors") {
		t.Errorf("/readyz?verbose with worker 0 out of descriptors = %d %q", code, body)
	}
	resp, err := client.Get("http://" + in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m := readAll(resp); !strings.Contains(m, "percore_workers_ready 1\n") ||
		!strings.Contains(m, "percore_direct_workers_not_accepting 1\n") {
		t.Errorf("/metrics should count 1 ready and 1 not accepting:\n%s", m)
	}

	// New connections go to worker 1 and are answered.
	quick := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	answered := map[string]int{}
	for i := range 30 {
		resp, err := quick.Get("http://" + in.addr + "/")
		if err != nil {
			t.Fatalf("new connection %d while worker 0 is out of descriptors: %v", i, err)
		}
		var h hello
		jsonDecode(resp, &h)
		resp.Body.Close()
		answered[h.Worker]++
	}
	if answered["1"] != 30 {
		t.Errorf("with worker 0 out of descriptors, 30 new connections were answered by %v, want worker 1 alone", answered)
	}

	// The idle connections close: worker 0 has descriptors again and comes back.
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	closed := time.Now()
	for w0.NotRouted != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		w0 = workerOf(getStatus(t, in), 0)
	}
	if !w0.Ready || w0.PID != pid {
		t.Fatalf("after the idle connections closed worker 0 = pid %d ready %v not_routed %q, want pid %d ready",
			w0.PID, w0.Ready, w0.NotRouted, pid)
	}
	t.Logf("worker 0 ready again %s after the idle connections closed", time.Since(closed).Round(time.Millisecond))
	if code, body := readyzVerbose(t, in); code != 200 {
		t.Errorf("/readyz?verbose with both workers accepting = %d %q", code, body)
	}
	waitDirectServing(t, in, 2, "after the idle connections closed")
}

// countFDs counts the descriptors pid has open.
func countFDs(pid int) (int, int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), 0, err
}

// In direct mode /readyz first answers 200 once every first worker serves:
// a connection stays with the worker that accepted it, so a client that
// connected while worker 0 alone served would stay on it.
func TestDirectModeReadyzWaitsForEveryFirstWorker(t *testing.T) {
	needNode(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	app, err := filepath.Abs(appJS())
	if err != nil {
		t.Fatal(err)
	}
	// Worker 1 loads the app only once the gate file exists.
	script := filepath.Join(dir, "gated.js")
	err = os.WriteFile(script, []byte(fmt.Sprintf(`const fs = require("fs");
const run = () => require(%q);
if (process.env.PERCORE_WORKER_ID !== "1") run();
else { const t = setInterval(() => { if (fs.existsSync(%q)) { clearInterval(t); run(); } }, 20); }
`, app, gate)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, "--mode", "direct", "--workers", "2", "--", "node", script)
	deadline := time.Now().Add(testutil.Scaled(20 * time.Second))
	var code int
	var body string
	for time.Now().Before(deadline) {
		before := getStatus(t, in)
		code, body = readyzVerbose(t, in)
		after := getStatus(t, in)
		if workerOf(after, 1).Ready {
			t.Fatal("worker 1 became ready before its gate opened")
		}
		if workerOf(before, 0).Ready && workerOf(after, 0).Ready {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(body, "starting: 1 of the 2 first workers are ready") {
		t.Fatalf("with worker 0 alone serving, /readyz?verbose = %d %q, want 503, starting", code, body)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for code != 200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, body = readyzVerbose(t, in)
	}
	if code != 200 {
		t.Fatalf("with both workers ready, /readyz?verbose = %d %q", code, body)
	}
	if st := getStatus(t, in); !workerOf(st, 0).Ready || !workerOf(st, 1).Ready {
		t.Errorf("/readyz answered 200, yet /status = %+v", st.Workers)
	}
}

// A worker whose event loop is stuck leaves its connections in its
// socket's queue: after a second of a queue that does not drain, new
// connections go to the other worker.
func TestDirectModeStuckWorkerTakesNoNewConnections(t *testing.T) {
	needNode(t)
	in := start(t, "--mode", "direct", "--workers", "2", "--health-interval", "off", "--", "node", appJS())
	waitDirectServing(t, in, 2, "start")
	blockWorker(t, in, "0")
	blocked := time.Now()
	// New connections, each with a request; those the kernel gives worker
	// 0 wait in its queue.
	var waiting []net.Conn
	defer func() {
		for _, c := range waiting {
			c.Close()
		}
	}()
	deadline := time.Now().Add(testutil.Scaled(20 * time.Second))
	var w0 health.WorkerStatus
	for w0.NotRouted != "not accepting" && time.Now().Before(deadline) {
		if len(waiting) < 40 {
			c, err := net.DialTimeout("tcp", in.addr, 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", len(waiting), err)
			}
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			waiting = append(waiting, c)
		}
		time.Sleep(20 * time.Millisecond)
		w0 = workerOf(getStatus(t, in), 0)
	}
	if w0.NotRouted != "not accepting" || !strings.Contains(w0.NotAccepting, "not accepting for") {
		t.Fatalf("worker 0 blocked: not_routed %q, not_accepting %q; want not accepting for a while", w0.NotRouted, w0.NotAccepting)
	}
	t.Logf("worker 0 blocked, %d connections opened; %s later: %s", len(waiting), time.Since(blocked).Round(time.Millisecond), w0.NotAccepting)
	quick := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 20 {
		resp, err := quick.Get("http://" + in.addr + "/")
		if err != nil {
			t.Fatalf("new connection %d with worker 0 stuck: %v", i, err)
		}
		var h hello
		jsonDecode(resp, &h)
		resp.Body.Close()
		if h.Worker != "1" {
			t.Fatalf("new connection %d with worker 0 stuck answered by worker %q", i, h.Worker)
		}
	}
}

// blockWorker finds a new connection that worker id accepted and blocks its
// event loop for good through it.
func blockWorker(t *testing.T, in *instance, id string) {
	t.Helper()
	for range 40 {
		c, err := net.DialTimeout("tcp", in.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		ask := func(path string) hello {
			var h hello
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			jsonDecode(resp, &h)
			resp.Body.Close()
			return h
		}
		if ask("/").Worker == id {
			ask("/block")
			c.Close()
			return
		}
		c.Close()
	}
	t.Fatalf("worker %s accepted none of 40 new connections", id)
}
