//go:build chaos

package chaos

import (
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReloadLoop sends SIGHUP every 5 s under load: each rolling reload
// starts the replacement before the old worker drains, so no request fails.
func TestReloadLoop(t *testing.T) {
	f := book.row(t, "2", "`SIGHUP` rolling reload every 5 s")
	needNode(t)
	reloads := 6
	if testing.Short() {
		reloads = 2
	}
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--", "node", appPath("app.js")}})
	before := in.waitReady(workers, 10*time.Second).readyPids()
	l := startLoad(t, in.addr,
		stream{name: "GET /", clients: 4, req: get("/")},
		stream{name: "GET /slow?ms=200", clients: 2, req: get("/slow?ms=200")},
		stream{name: "POST /slow?ms=200", clients: 2, req: post("/slow?ms=200", 1024)},
	)
	from := in.logCount()
	var took []time.Duration
	for i := range reloads {
		time.Sleep(time.Second)
		mark := in.logCount()
		began := time.Now()
		in.signal(syscall.SIGHUP)
		done := in.waitLog("reload done", mark, 30*time.Second)
		took = append(took, done.at.Sub(began))
		if i < reloads-1 {
			time.Sleep(time.Until(began.Add(5 * time.Second)))
		}
	}
	time.Sleep(time.Second)
	recs := l.stop()
	st := in.waitReady(workers, 10*time.Second)

	all := count(recs, nil)
	f.requests(all)
	slices.Sort(took)
	f.add("%d reloads, each %s–%s", reloads, took[0].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond))
	f.add("%d workers replaced", in.countLogs("worker stopped", from))
	lat := latencies(recs, nil)
	f.add("latency p50 %s p99 %s max %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))

	if all.failed() > 0 || all.ok == 0 {
		t.Errorf("%d of %d requests failed during reloads: %s", all.failed(), all.sent, all.reasonsText())
	}
	if n := in.countLogs("RELOAD FAILED", from); n > 0 {
		t.Errorf("%d reloads failed", n)
	}
	for _, pid := range st.readyPids() {
		if slices.Contains(before, pid) {
			t.Errorf("worker %d from before the reloads still serves", pid)
		}
	}
}
