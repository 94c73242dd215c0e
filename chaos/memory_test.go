//go:build chaos

package chaos

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
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// TestLeakRecycled makes one worker grow its resident memory by 100 MB/s past
// --max-memory 150: percore starts its replacement, then drains and stops
// it, and no request fails.
func TestLeakRecycled(t *testing.T) {
	f := book.row(t, "4", "a worker leaks memory past `--max-memory 150`")
	needNode(t)
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--max-memory", "150",
		"--", "node", appPath("app.js")}})
	l := startLoad(t, in.addr,
		stream{name: "GET /", clients: 4, req: get("/")},
		stream{name: "GET /slow?ms=100", clients: 2, req: get("/slow?ms=100")},
		stream{name: "POST /slow?ms=100", clients: 2, req: post("/slow?ms=100", 1024)},
	)
	time.Sleep(time.Second)
	from := in.logCount()
	began := time.Now()
	leaky := in.getPid("/leak?mb=10&every=100&max=400")
	var peak uint64
	deadline := time.Now().Add(30 * time.Second)
	for alive(leaky) && time.Now().Before(deadline) {
		peak = max(peak, vmRSS(leaky))
		time.Sleep(50 * time.Millisecond)
	}
	gone := time.Since(began)
	st, _ := in.awaitReady(workers, 10*time.Second)
	time.Sleep(time.Second)
	recs := l.stop()

	all := count(recs, nil)
	f.requests(all)
	rec, recycled := in.awaitLog("recycling worker", from, 0)
	stopped, _ := in.awaitLog("worker stopped", from, 0)
	if recycled {
		f.add("recycled %s after the leak began", rec.at.Sub(began).Round(10*time.Millisecond))
	}
	if recycled {
		f.add("%v", rec.m["reason"])
	}
	f.add("peak RSS %s seen from outside; old worker gone %s after the leak began (%v)",
		mib(peak), gone.Round(10*time.Millisecond), stopped.m["exit"])
	lat := latencies(recs, nil)
	f.add("latency p50 %s p99 %s max %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))

	if !recycled {
		t.Errorf("the leaking worker %d was not recycled", leaky)
	}
	if alive(leaky) {
		t.Errorf("the leaking worker %d is still alive %s after its leak began", leaky, gone)
	}
	if all.failed() > 0 || all.ok == 0 {
		t.Errorf("%d of %d requests failed during the recycling: %s", all.failed(), all.sent, all.reasonsText())
	}
	for _, pid := range st.readyPids() {
		if pid == leaky {
			t.Errorf("the leaking worker %d still serves", leaky)
		}
	}
	if len(st.readyPids()) != workers {
		t.Errorf("%d of %d workers ready after the recycling", len(st.readyPids()), workers)
	}
}

// growth is a run of an app whose memory outside the JavaScript heap grows
// from its start by 4 MiB of Buffers every 50 ms (80 MiB/s: no heap limit
// stops it), in a memory cgroup of its own, with the memory guard at its
// defaults. Every worker, and every replacement, grows until the guard
// replaces it.
type growth struct {
	id, name string
	limit    int64
	workers  int
	runtime  string        // "node" or "bun"
	readyIn  time.Duration // each replacement ready this soon after the old worker stopped (0: reported only)
}

// TestOffHeapGrowthGuarded runs the growth in 256 MB with 1 node worker, in
// 512 MB with 2, and in 256 MB with 1 Bun worker, until every slot's worker
// has been replaced by the guard twice (once with -short): each is recycled
// (early at the rate it grows, or over its budget), the old worker stops
// before its replacement starts (no spare slot), the kernel's OOM killer
// never runs, /status answers within 1 s throughout, and no request fails —
// requests wait for the replacement. All three run in -short, in about 4 s
// each.
func TestOffHeapGrowthGuarded(t *testing.T) {
	for _, g := range []growth{
		{id: "4b", name: "node, Buffers +80 MiB/s from the start: 256 MB cgroup, 1 worker", limit: 256 << 20, workers: 1, runtime: "node"},
		{id: "4c", name: "node, Buffers +80 MiB/s from the start: 512 MB cgroup, 2 workers", limit: 512 << 20, workers: 2, runtime: "node"},
		{id: "4d", name: "bun, Buffers +80 MiB/s from the start: 256 MB cgroup, 1 worker (no spare slot)", limit: 256 << 20, workers: 1, runtime: "bun", readyIn: 2 * time.Second},
	} {
		t.Run(fmt.Sprintf("%s/%dMB/%d", g.runtime, g.limit>>20, g.workers), g.run)
	}
}

func (g growth) run(t *testing.T) {
	f := book.row(t, g.id, g.name)
	argv := runtimeArgv(t, g.runtime)
	cg := testutil.NewMemoryCgroup(t, g.limit)
	cycles := 2
	if testing.Short() {
		cycles = 1
	}
	in := launch(t, options{wrapper: cg.Wrapper(), env: []string{"CHAOS_GROW=4,50"},
		args: append([]string{"--workers", strconv.Itoa(g.workers), "--"}, argv...)})
	guard := in.waitLog("memory guard", 0, 10*time.Second)
	polls := pollStatus(in.admin)
	l := startLoad(t, in.addr, stream{name: "GET /", clients: 2, req: get("/")})
	deadline := time.Now().Add(time.Duration(cycles) * 20 * time.Second)
	var lives map[int][]life
	for {
		lives = workerLives(in.logsMatching("", 0))
		if done(lives, g.workers, cycles) || time.Now().After(deadline) {
			break
		}
		select {
		case <-in.exited:
			t.Fatalf("percore exited: %v; its last lines:\n%s", in.err, in.recentStderr())
		case <-time.After(50 * time.Millisecond):
		}
	}
	recs := l.stop()
	ps := polls.stop()
	st, err := in.status()
	if err != nil {
		t.Errorf("/status: %v", err)
	}
	for _, w := range st.Workers {
		if w.LastExit == nil || !strings.HasPrefix(w.LastExit.Reason, "memory: ") {
			t.Errorf("/status: worker %d's last exit is %+v, want the guard's reason \"memory: …\"", w.ID, w.LastExit)
		}
	}
	oom, err := cg.OOMKills()
	if err != nil {
		t.Errorf("read the OOM kill count: %v", err)
	}
	peak, _ := cg.Peak()

	all := count(recs, nil)
	f.requests(all)
	var recycled, killed, crashed, stopFirst, replaced int
	var gap, readyAfter time.Duration
	for _, ls := range lives {
		for i, lf := range ls[:len(ls)-1] {
			next := ls[i+1]
			switch {
			case lf.recycled != "":
				recycled++
			case lf.killed != "":
				killed++
			default:
				crashed++
				t.Errorf("worker %d (pid %d) ended without the guard: %s", lf.slot, lf.pid, lf.end)
			}
			if lf.endIdx != 0 && lf.endIdx < next.startIdx {
				stopFirst++
			} else {
				t.Errorf("worker %d: pid %d started (log line %d) before pid %d stopped (line %d, 0: not yet)",
					lf.slot, next.pid, next.startIdx, lf.pid, lf.endIdx)
			}
			if next.ready.IsZero() || lf.ended.IsZero() {
				continue
			}
			replaced++
			gap = max(gap, next.ready.Sub(lf.out))
			readyAfter = max(readyAfter, next.ready.Sub(lf.ended))
		}
	}
	lat := latencies(recs, nil)
	f.add("guard budget %vMiB, hard limit %vMiB, stop first %v", guard.m["budget_mib"], guard.m["hard_mib"], guard.m["stop_first"])
	for _, w := range st.Workers {
		if w.LastExit != nil {
			f.add("/status of worker %d: %q", w.ID, w.LastExit.Reason)
		}
	}
	f.add("%d recycled by the guard, %d killed by it, %d other ends; %d kernel OOM kills; cgroup peak %s",
		recycled, killed, crashed, oom, mib(peak))
	f.add("%d of %d replacements stopped the old worker first; replacement ready at most %s after the old one stopped; a slot served nothing for at most %s",
		stopFirst, recycled+killed, ms(readyAfter), ms(gap))
	f.add("/status: %d polls every 100 ms, %d unanswered, slowest %s", len(ps), unanswered(ps), ms(slowest(ps)))
	if len(lat) > 0 {
		f.add("latency p50 %s p99 %s max %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))
	}

	for slot := range g.workers {
		n := 0
		for _, lf := range lives[slot] {
			if lf.recycled != "" {
				n++
			}
		}
		if n == 0 || len(lives[slot]) <= cycles || lives[slot][cycles].ready.IsZero() {
			t.Errorf("worker %d: %d recycles over budget and %d lives (the last ready: %v), want %d replaced by the guard with at least one recycle; percore's last lines:\n%s",
				slot, n, len(lives[slot]), len(lives[slot]) > 0 && !lives[slot][len(lives[slot])-1].ready.IsZero(), cycles, in.recentStderr())
		}
	}
	if oom != 0 {
		t.Errorf("the kernel's OOM killer ran %d times", oom)
	}
	if n := unanswered(ps); n > 0 || slowest(ps) > time.Second {
		t.Errorf("/status: %d of %d polls unanswered, slowest %s; want every one within 1s", n, len(ps), slowest(ps))
	}
	if all.failed() > 0 || all.ok == 0 {
		t.Errorf("%d of %d requests failed: %s", all.failed(), all.sent, all.reasonsText())
	}
	if g.readyIn > 0 && readyAfter > g.readyIn {
		t.Errorf("a replacement was ready %s after the old worker stopped, want within %s", readyAfter, g.readyIn)
	}
}

// runtimeArgv is the worker command for the chaos app in runtime, or skips
// the test when the runtime is not installed.
func runtimeArgv(t *testing.T, runtime string) []string {
	t.Helper()
	if runtime == "node" {
		needNode(t)
		return []string{"node", appPath("app.js")}
	}
	if p, err := filepath.Abs(filepath.Join("..", ".tools", "bin", runtime)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return []string{p, appPath("app.js")}
		}
	}
	p, err := exec.LookPath(runtime)
	if err != nil {
		t.Skipf("%s is not installed (run scripts/install-tools)", runtime)
	}
	return []string{p, appPath("app.js")}
}

// life is one worker process's life in a slot, from percore's log.
type life struct {
	slot, pid int
	startIdx  int       // index of its "worker starting" line
	ready     time.Time // when it was ready (zero: never)
	out       time.Time // when it left the rotation for good
	recycled  string    // the guard's first reason, if it recycled it
	killed    string    // the guard's reason, if it killed it
	ended     time.Time // when percore saw it stop or exit
	endIdx    int       // index of that line (0: still alive)
	end       string    // how it ended
	urged     bool      // the guard stopped it before its replacement was ready
	oomKilled bool      // percore diagnosed it as the kernel OOM killer's victim
}

// workerLives reads the lives of every slot's workers from the log lines,
// in order.
func workerLives(logs []logLine) map[int][]life {
	lives := map[int][]life{}
	at := func(l logLine) time.Time {
		if ts, ok := l.m["@timestamp"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				return t
			}
		}
		return l.at
	}
	for i, l := range logs {
		slotF, ok1 := l.m["worker"].(float64)
		pidF, ok2 := l.m["pid"].(float64)
		if !ok1 || !ok2 {
			continue
		}
		slot, pid := int(slotF), int(pidF)
		ls := lives[slot]
		if l.msg == "worker starting" {
			lives[slot] = append(ls, life{slot: slot, pid: pid, startIdx: i})
			continue
		}
		j := len(ls) - 1
		for j >= 0 && ls[j].pid != pid {
			j--
		}
		if j < 0 {
			continue
		}
		lf := &ls[j]
		reason, _ := l.m["reason"].(string)
		switch {
		case l.msg == "worker ready":
			lf.ready = at(l)
		case l.msg == "recycling worker" && strings.HasPrefix(reason, "memory: "):
			if lf.recycled == "" {
				lf.recycled = reason
			}
		case l.msg == "killing worker" && strings.HasPrefix(reason, "memory: "):
			lf.killed = reason
			lf.out = at(l)
		case strings.HasPrefix(l.msg, "replacing worker"), l.msg == "worker draining":
			if lf.out.IsZero() {
				lf.out = at(l)
			}
			if strings.Contains(l.msg, "before its replacement is ready") {
				lf.urged = true
			}
		case strings.HasPrefix(l.msg, "worker was killed by the kernel OOM killer"):
			lf.oomKilled = true
		case (l.msg == "worker stopped" || l.msg == "worker exited" || l.msg == "worker exited before it was ready") && lf.endIdx == 0:
			lf.ended, lf.endIdx = at(l), i
			lf.end = fmt.Sprintf("%s (%v)", l.msg, l.m["exit"])
			if lf.out.IsZero() {
				lf.out = lf.ended
			}
		}
	}
	return lives
}

// done reports whether each of the slots has seen cycles replacements,
// the last of them ready.
func done(lives map[int][]life, slots, cycles int) bool {
	for slot := range slots {
		ls := lives[slot]
		if len(ls) <= cycles || ls[cycles].ready.IsZero() {
			return false
		}
	}
	return true
}

// statusPoll is one GET /status: how long it took, and whether it got a 200.
type statusPoll struct {
	latency time.Duration
	ok      bool
}

// statusPoller asks /status every 100 ms, on a new connection each time
// (as a health probe does), until stopped.
type statusPoller struct {
	stopCh chan struct{}
	wg     sync.WaitGroup
	polls  []statusPoll // written by run, read after stop
}

func pollStatus(admin string) *statusPoller {
	p := &statusPoller{stopCh: make(chan struct{})}
	p.wg.Add(1)
	go p.run(admin)
	return p
}

func (p *statusPoller) run(admin string) {
	defer p.wg.Done()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range 3000 { // 5 minutes at most
		select {
		case <-p.stopCh:
			return
		case <-tick.C:
		}
		began := time.Now()
		resp, err := c.Get("http://" + admin + "/status")
		ok := err == nil
		if ok {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = err == nil && resp.StatusCode == http.StatusOK
		}
		p.polls = append(p.polls, statusPoll{latency: time.Since(began), ok: ok})
	}
}

// stop ends the polling and returns the polls.
func (p *statusPoller) stop() []statusPoll {
	close(p.stopCh)
	p.wg.Wait()
	return p.polls
}

func unanswered(ps []statusPoll) int {
	n := 0
	for _, p := range ps {
		if !p.ok {
			n++
		}
	}
	return n
}

func slowest(ps []statusPoll) time.Duration {
	var m time.Duration
	for _, p := range ps {
		m = max(m, p.latency)
	}
	return m
}

// TestStatusAndStopAtCgroupLimit turns the guard off and has the only
// worker fill its 256 MB cgroup with Buffers up to 6 MiB below the limit
// and hold it there, so that the page cache — code included — has 6 MiB
// and the kernel reclaims it all the time. percore's binary is a fresh copy
// out of the page cache, so its code is charged to the cgroup too, as when
// a container runs it first. percore must stay responsive: /status answers
// within 1 s, and SIGTERM starts the stop within 1 s. It runs in -short, in
// about 5 s.
func TestStatusAndStopAtCgroupLimit(t *testing.T) {
	f := book.row(t, "4e", "`--max-memory off`: a worker holds its 256 MB cgroup 6 MiB below the limit; then `SIGTERM`")
	needNode(t)
	const limit = 256 << 20
	cg := testutil.NewMemoryCgroup(t, limit)
	hold := 3 * time.Second
	if !testing.Short() {
		hold = 8 * time.Second
	}
	in := launch(t, options{binary: uncachedCopy(t, percoreBin), wrapper: cg.Wrapper(),
		env:  []string{"CHAOS_HOLD=" + cg.Dir + ",6"},
		args: []string{"--workers", "1", "--max-memory", "off", "--shutdown-timeout", "2s", "--", "node", appPath("app.js")}})
	deadline := time.Now().Add(20 * time.Second)
	for len(in.appLinesWith("chaos-holding")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(in.appLinesWith("chaos-holding")) == 0 {
		t.Fatalf("the worker did not fill its cgroup within 20s; percore's last lines:\n%s", in.recentStderr())
	}
	faults := majorFaults(in.pid())
	polls := pollStatus(in.admin)
	time.Sleep(hold) // the scenario's length: there is no event to wait for
	ps := polls.stop()
	faults = majorFaults(in.pid()) - faults
	usage, _ := cg.Usage()
	oom, _ := cg.OOMKills()
	from := in.logCount()
	sent := time.Now()
	in.signal(syscall.SIGTERM)
	stopping, handled := in.awaitLog("stopping gracefully", from, 10*time.Second)
	code := in.waitExitCode(10 * time.Second)
	exited := in.exitAt.Sub(sent)

	f.add("/status: %d polls every 100 ms over %s, %d unanswered, slowest %s", len(ps), hold, unanswered(ps), ms(slowest(ps)))
	f.add("percore's major page faults meanwhile: %d; cgroup at %s of %s; %d kernel OOM kills of the worker",
		faults, mib(usage), mib(limit), oom)
	if handled {
		f.add("SIGTERM: stop begun after %s, exit %d after %s", ms(stopping.at.Sub(sent)), code, ms(exited))
	}
	if n := unanswered(ps); n > 0 || slowest(ps) > time.Second {
		t.Errorf("/status: %d of %d polls unanswered, slowest %s; want every one within 1s", n, len(ps), slowest(ps))
	}
	if !handled || stopping.at.Sub(sent) > time.Second {
		t.Errorf("SIGTERM: \"stopping gracefully\" logged: %v, after %s; want within 1s", handled, stopping.at.Sub(sent))
	}
	if code != 0 || exited > 2*time.Second+time.Second {
		t.Errorf("percore exited %d after %s, want 0 within --shutdown-timeout 2s and 1s", code, exited)
	}
}
