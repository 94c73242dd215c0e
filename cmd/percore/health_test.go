package main

import (
	"encoding/json"
	"github.com/percore/percore/internal/testutil"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/health"
)

func getStatus(t *testing.T, in *instance) health.Status {
	t.Helper()
	var st health.Status
	getJSON(t, "http://"+in.admin+"/status", &st)
	return st
}

func TestStatusReportsWorkersAndRestarts(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--heap", "200", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	serving := servingPids(t, in, 20)
	time.Sleep(1200 * time.Millisecond) // memory is sampled every second; a worker up for 1s has started well
	st := getStatus(t, in)
	if st.Version == "" || st.Plan.Workers != 2 || st.Plan.HeapMB != 200 || st.Plan.Runtime != "node" ||
		st.Plan.CPUSource == "" || st.Plan.MemorySource == "" || st.ReadyWorkers != 2 {
		t.Errorf("status = %+v", st)
	}
	var requests, answered uint64
	for _, w := range st.Workers {
		if !serving[w.PID] || w.State != "ready" || !w.Ready || w.RSSBytes < 10<<20 || w.UptimeS < 1 {
			t.Errorf("worker %+v does not match the serving pids %v", w, serving)
		}
		if w.Latency == nil || w.Latency.Count == 0 || w.Latency.Count > w.Answered || w.Latency.P50Ms <= 0 || w.Latency.P99Ms < w.Latency.P50Ms {
			t.Errorf("worker %d: latency %+v over its %d answers", w.ID, w.Latency, w.Answered)
		}
		requests += w.Requests
		answered += w.Answered
	}
	if requests < 20 || answered != requests || st.Answered != answered || st.Errors5xx != 0 {
		t.Errorf("status counts %d requests, %d answered, %d in total with %d 5xx; want at least 20, all answered, no 5xx",
			requests, answered, st.Answered, st.Errors5xx)
	}
	raw, err := exec.Command(percoreBin, "status", "--json", "--admin", in.admin).Output()
	if err != nil || strings.Contains(string(raw), "PATH=") || strings.Contains(string(raw), "PERCORE_TEST_MARK") {
		t.Errorf("status --json: %v, or it leaks the environment: %s", err, raw)
	}

	var h hello
	getJSON(t, "http://"+in.addr+"/exit", &h)
	in.waitLog("worker ready", 20*time.Second)
	for _, w := range getStatus(t, in).Workers {
		if w.Restarts == 1 {
			if w.LastExit == nil || w.LastExit.Code != 9 || w.LastExit.Reason != "crash" {
				t.Errorf("last exit = %+v, want crash with code 9", w.LastExit)
			}
			return
		}
	}
	t.Errorf("no worker shows the restart: %+v", getStatus(t, in).Workers)
}

// TestStatusMemoryIsPSS: a worker of two node processes (the app and a
// child it started, as a wrapper's tree is) shows the sum of its processes'
// PSS on /status, with memory_measure "pss": well below the sum of their
// RSS, which counts the node binary's pages they share once in each.
func TestStatusMemoryIsPSS(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "sh", "-c", "node -e 'setInterval(() => {}, 1e6)' & exec node "+appJS())
	// Memory is sampled every second, PSS read at most once a second.
	time.Sleep(1200 * time.Millisecond)
	w := getStatus(t, in).Workers[0]
	for deadline := time.Now().Add(testutil.Scaled(10 * time.Second)); w.RSSBytes == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		w = getStatus(t, in).Workers[0]
	}
	var rss uint64
	var tree []int
	for queue := []int{w.PID}; len(queue) > 0; queue = queue[1:] {
		tree = append(tree, queue[0])
		kib, err := rssKiB(queue[0])
		if err != nil {
			t.Fatal(err)
		}
		rss += uint64(kib) << 10
		for c := range childrenOf(queue[0]) {
			queue = append(queue, c)
		}
	}
	t.Logf("/status: %d KiB by %s; RSS of %v: %d KiB", w.RSSBytes>>10, w.MemoryMeasure, tree, rss>>10)
	if w.MemoryMeasure != "pss" || len(tree) != 2 || w.RSSBytes == 0 || w.RSSBytes >= rss*9/10 {
		t.Errorf("/status shows %d bytes by %q for the tree %v whose RSS is %d bytes; want PSS, below 90%% of it",
			w.RSSBytes, w.MemoryMeasure, tree, rss)
	}
}

func TestStatusCommandPrintsTable(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	out, err := exec.Command(percoreBin, "status", "--admin", in.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("percore status: %v\n%s", err, out)
	}
	for _, want := range []string{"ID", "PID", "STATE", "RESTARTS", "RSS", "IN-FLIGHT", "REQ/S", "ready", "2/2 workers ready"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(percoreBin, "status", "--admin", "127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no percore answers") {
		t.Errorf("status against nothing: %v %s", err, out)
	}
}

func TestReadyzWhenAllWorkersAreDown(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS())
	var h hello
	getJSON(t, "http://"+in.addr+"/exit", &h)
	in.waitLog("worker exited", 10*time.Second)
	code := status(t, "http://"+in.admin+"/readyz")
	if code != 503 {
		t.Errorf("/readyz = %d with the only worker down, want 503", code)
	}
	if code := status(t, "http://"+in.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200: liveness does not depend on the workers", code)
	}
	in.waitLog("worker ready", 20*time.Second)
	if code := status(t, "http://"+in.admin+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after the restart, want 200", code)
	}
}

func TestBlockedEventLoopIsDetectedAndReplaced(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--health-interval", "300ms", "--health-timeout", "200ms",
		"--health-threshold", "2", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	var h hello
	getJSON(t, "http://"+in.addr+"/block", &h)
	blocked := h.PID
	began := time.Now()
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 2, stop)
	in.waitLog("ejecting worker", 10*time.Second)
	detected := time.Since(began)
	in.waitLog("worker ready", 20*time.Second)
	close(stop)
	wait()
	t.Logf("blocked loop detected after %s; load meanwhile: %d ok, %d failed", detected, res.ok.Load(), res.failed.Load())
	// interval × threshold + timeout, with room for a busy machine.
	if detected > 3*time.Second {
		t.Errorf("detection took %s", detected)
	}
	if servingPids(t, in, 20)[blocked] {
		t.Errorf("blocked worker %d still serves", blocked)
	}
	if res.ok.Load() == 0 {
		t.Error("the other worker did not carry the load")
	}
	for _, w := range getStatus(t, in).Workers {
		if w.LastExit != nil && w.LastExit.Reason == "health check" && w.Restarts == 1 {
			return
		}
	}
	t.Errorf("status does not show the health-check restart: %+v", getStatus(t, in).Workers)
}

func TestWorkerJSONLinesPassThroughUntouched(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--log-prefix", "off", "--", "node", appJS())
	line := `{"level":"info","msg":"hello \"world\"","n":1}`
	var h hello
	getJSON(t, "http://"+in.addr+"/log?line="+url.QueryEscape(line), &h)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(in.stdout.String(), line+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("stdout lacks the line byte for byte; got %q", in.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range strings.Split(strings.TrimSpace(in.stdout.String()), "\n") {
		if strings.HasPrefix(l, "{") && !json.Valid([]byte(l)) {
			t.Errorf("invalid JSON line on stdout: %q", l)
		}
	}
}

func TestLogPrefixAddsWorkerID(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--log-prefix", "on", "--", "node", appJS())
	var h hello
	getJSON(t, "http://"+in.addr+"/log?line=tagged", &h)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(in.stdout.String(), "[0] tagged\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no prefixed line; stdout %q", in.stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A worker's memory shows in /status from the moment it is ready, not a
// second later, and /status's count of ready workers agrees with its list.
func TestStatusShowsMemoryOnceReady(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS()) // returns once a worker is ready
	st := getStatus(t, in)
	ready := 0
	for _, w := range st.Workers {
		if w.Ready {
			ready++
			if w.RSSBytes == 0 || w.NotRouted != "" {
				t.Errorf("a ready worker shows %+v", w)
			}
		} else if w.NotRouted == "" {
			t.Errorf("a worker not ready does not say why: %+v", w)
		}
	}
	if ready != st.ReadyWorkers || ready != 1 {
		t.Errorf("ready_workers %d, %d workers show ready", st.ReadyWorkers, ready)
	}
}
