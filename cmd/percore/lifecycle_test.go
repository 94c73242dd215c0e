package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// loadResult counts what a steady client load saw.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	pids       map[int]bool
	errors     []string
}

// steadyLoad keeps conns keep-alive clients sending GETs to url until stop
// is closed (or 60s, or 20000 requests each, whichever comes first).
func steadyLoad(url string, conns int, stop <-chan struct{}) (*loadResult, func()) {
	r := &loadResult{pids: map[int]bool{}}
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			deadline := time.Now().Add(60 * time.Second)
			for n := 0; n < 20000 && time.Now().Before(deadline); n++ {
				select {
				case <-stop:
					return
				default:
				}
				r.one(c, url)
			}
		}()
	}
	return r, wg.Wait
}

func (r *loadResult) one(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		r.fail(err.Error())
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		r.fail(fmt.Sprintf("status %d: %s", resp.StatusCode, body))
		return
	}
	r.ok.Add(1)
	if i := strings.Index(string(body), `"pid":`); i >= 0 {
		pid, _ := strconv.Atoi(digits(string(body[i+6:])))
		r.mu.Lock()
		r.pids[pid] = true
		r.mu.Unlock()
	}
}

func digits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func (r *loadResult) fail(msg string) {
	r.failed.Add(1)
	r.mu.Lock()
	if len(r.errors) < 5 {
		r.errors = append(r.errors, msg)
	}
	r.mu.Unlock()
}

func (r *loadResult) check(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %d requests succeeded, %d failed", what, r.ok.Load(), r.failed.Load())
	if r.failed.Load() > 0 || r.ok.Load() == 0 {
		t.Errorf("%s: %d of %d requests failed: %v", what, r.failed.Load(), r.failed.Load()+r.ok.Load(), r.errors)
	}
}

// servingPids asks n times which worker answers.
func servingPids(t *testing.T, in *instance, n int) map[int]bool {
	t.Helper()
	m := map[int]bool{}
	for i := 0; i < n; i++ {
		var h hello
		getJSON(t, "http://"+in.addr+"/", &h)
		m[h.PID] = true
	}
	return m
}

// waitServing waits until /status shows n ready workers and each of them
// has answered a request through the proxy, and fails when that does not
// happen within 20s or a worker that is not ready answers. A log line such
// as "worker ready" is no count of ready workers (a replaced worker logs
// it too), and a fixed number of requests may miss a worker the balancer
// finds busy.
func waitServing(t *testing.T, in *instance, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	ready := map[int]bool{}
	for len(ready) != n && time.Now().Before(deadline) {
		clear(ready)
		for _, w := range getStatus(t, in).Workers {
			if w.Ready {
				ready[w.PID] = true
			}
		}
		if len(ready) != n {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(ready) != n {
		t.Fatalf("%s: %d workers ready, want %d", what, len(ready), n)
	}
	seen := map[int]bool{}
	for len(seen) < n && time.Now().Before(deadline) {
		var h hello
		getJSON(t, "http://"+in.addr+"/", &h)
		if !ready[h.PID] {
			t.Fatalf("%s: pid %d answered, not one of the ready workers %v", what, h.PID, ready)
		}
		seen[h.PID] = true
	}
	if len(seen) != n {
		t.Errorf("%s: %d workers serve, want %d", what, len(seen), n)
	}
}

func controlPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "percore.sock")
}

func TestReloadUnderLoadDropsNothing(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--control", controlPath(t), "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	before := servingPids(t, in, 20)
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 8, stop)
	time.Sleep(300 * time.Millisecond)
	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wait()
	res.check(t, "reload under load")
	after := servingPids(t, in, 20)
	for pid := range after {
		if before[pid] {
			t.Errorf("pid %d was not replaced by the reload", pid)
		}
	}
	if len(after) != 2 {
		t.Errorf("%d workers serve after the reload, want 2", len(after))
	}
}

func TestReloadWithBrokenCodeKeepsOldWorkers(t *testing.T) {
	needNode(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app.js")
	good, err := os.ReadFile(appJS())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(app, good, 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := controlPath(t)
	in := start(t, "--workers", "2", "--control", ctl, "--", "node", app)
	in.waitLog("worker ready", 20*time.Second)
	before := servingPids(t, in, 20)

	if err := os.WriteFile(app, []byte(`throw new Error("broken deploy")`), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 4, stop)
	out, err := exec.Command(percoreBin, "reload", "--control", ctl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("percore reload: %v %s", err, out)
	}
	in.waitLog("RELOAD FAILED", 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wait()
	res.check(t, "failed reload")
	if after := servingPids(t, in, 20); len(after) != 2 || !sameKeys(before, after) {
		t.Errorf("serving pids %v after a failed reload, want the old %v", after, before)
	}
}

func sameKeys(a, b map[int]bool) bool {
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

func TestScaleWithSignalsAndCommand(t *testing.T) {
	needNode(t)
	ctl := controlPath(t)
	in := start(t, "--workers", "2", "--control", ctl, "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 4, stop)

	in.signal(syscall.SIGTTIN)
	waitServing(t, in, 3, "TTIN")
	in.signal(syscall.SIGTTOU)
	in.waitLog("worker stopped", 20*time.Second)
	waitServing(t, in, 2, "TTOU")
	out, err := exec.Command(percoreBin, "scale", "+1", "--control", ctl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "workers=3") {
		t.Fatalf("percore scale +1: %v %s", err, out)
	}
	in.waitLog("worker ready", 20*time.Second)
	out, err = exec.Command(percoreBin, "scale", "1", "--control", ctl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "workers=1") {
		t.Fatalf("percore scale 1: %v %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(servingPids(t, in, 20)) != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wait()
	res.check(t, "scaling")
	if n := len(servingPids(t, in, 20)); n != 1 {
		t.Errorf("scale 1: %d workers serve", n)
	}
}

func TestControlCommandWithoutPercore(t *testing.T) {
	out, err := exec.Command(percoreBin, "reload", "--control", filepath.Join(t.TempDir(), "none.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no percore answers") {
		t.Errorf("percore reload with nothing running: %v %s", err, out)
	}
}

func TestWorkerAboveMaxMemoryIsRecycledWithoutErrors(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--max-memory", "150", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	var h hello
	getJSON(t, "http://"+in.addr+"/grow?mb=200", &h)
	leaky := h.PID
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 4, stop)
	in.waitLog("recycling worker", 10*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for servingPids(t, in, 20)[leaky] && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wait()
	res.check(t, "memory recycle")
	if servingPids(t, in, 20)[leaky] {
		t.Errorf("worker %d above --max-memory still serves", leaky)
	}
}

func TestOOMKilledWorkerIsDiagnosed(t *testing.T) {
	needNode(t)
	cg := testutil.NewMemoryCgroup(t, 256<<20)
	in := launchVia(t, cg.Wrapper(), "--workers", "1", "--heap", "off", "--max-memory", "off", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	go func() {
		// Buffers live outside the V8 heap: only the cgroup limit stops them.
		for i := 0; i < 10; i++ {
			resp, err := client.Get("http://" + in.addr + "/grow?mb=100")
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	in.waitLog("worker was killed by the kernel OOM killer", 20*time.Second)
	in.waitLog("worker ready", 20*time.Second)
}

// TestOOMKillsOfTwoWorkersAreBothReported: two node workers fill their
// 256 MB memory cgroup (no swap) with Buffers together, and the kernel's
// OOM killer ends both while percore is frozen, so that it sees both exits
// after both kills. Each is reported: one log line per kill, and each
// slot's last exit says "oom kill". Before, the first exit looked at took
// both kills of the cgroup's count, and the other was a plain crash.
func TestOOMKillsOfTwoWorkersAreBothReported(t *testing.T) {
	needNode(t)
	cg := testutil.NewMemoryCgroup(t, 256<<20)
	pair := filepath.Join(t.TempDir(), "pair")
	in := launchBin(t, percoreBin, []string{"OOM_PAIR_FILE=" + pair}, cg.Wrapper(),
		"--workers", "2", "--heap", "off", "--max-memory", "off", "--", "node", "testdata/oom-pair.js")
	in.waitLog("worker ready", 20*time.Second)
	var st struct {
		ReadyWorkers int `json:"ready_workers"`
		Workers      []struct {
			PID      int `json:"pid"`
			LastExit *struct {
				Signal string `json:"signal"`
				Reason string `json:"reason"`
			} `json:"last_exit"`
		} `json:"workers"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for getJSON(t, "http://"+in.admin+"/status", &st); st.ReadyWorkers < 2; getJSON(t, "http://"+in.admin+"/status", &st) {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers ready after 20s", st.ReadyWorkers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	thaw, frozen := testutil.Freeze(t, in.cmd.Process.Pid)
	pids := fmt.Sprintf("%d %d\n", st.Workers[0].PID, st.Workers[1].PID)
	if err := os.WriteFile(pair, []byte(pids), 0o644); err != nil {
		t.Fatal(err)
	}
	if frozen {
		for deadline = time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if n, err := cg.OOMKills(); err != nil || n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				thaw()
				t.Fatalf("the kernel did not kill both workers within 30s")
			}
		}
		thaw()
	} else {
		t.Log("no cgroup v1 freezer here: percore may see the first exit before the second kill")
	}
	for deadline = time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		getJSON(t, "http://"+in.admin+"/status", &st)
		done := st.ReadyWorkers == 2
		for _, w := range st.Workers {
			done = done && w.LastExit != nil
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("both workers were not killed and restarted within 30s: %+v; logs:\n%s", st, in.logs.String())
		}
	}
	kills, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(in.logs.String(), "worker was killed by the kernel OOM killer")
	t.Logf("kernel OOM kills %d, reported %d", kills, lines)
	if kills < 2 || lines != kills {
		t.Errorf("the kernel killed %d processes, percore reported %d OOM kills; logs:\n%s", kills, lines, in.logs.String())
	}
	for i, w := range st.Workers {
		if w.LastExit.Signal != "killed" || w.LastExit.Reason != "oom kill" {
			t.Errorf("worker %d's last exit: %+v, want killed, \"oom kill\"", i, *w.LastExit)
		}
	}
}

func TestMaxRequestsRecyclesWithoutErrors(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--max-requests", "50", "--", "node", appJS())
	first := servingPids(t, in, 1)
	stop := make(chan struct{})
	res, wait := steadyLoad("http://"+in.addr+"/", 2, stop)
	in.waitLog("recycling worker", 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for sameKeys(servingPids(t, in, 5), first) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wait()
	res.check(t, "max-requests recycle")
	if sameKeys(servingPids(t, in, 5), first) {
		t.Error("the worker was not replaced after 50 requests")
	}
}
