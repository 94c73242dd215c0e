//go:build chaos

package chaos

import (
	"strconv"
	"testing"
	"time"
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
