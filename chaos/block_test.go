//go:build chaos

package chaos

import (
	"strconv"
	"testing"
	"time"
)

// TestBlockedEventLoop blocks one worker's event loop for good. Active
// health checks take it out of rotation and restart it; the other worker
// carries the load. Requests already routed to the blocked worker wait for
// it: they are counted, with how they ended.
func TestBlockedEventLoop(t *testing.T) {
	f := book.row(t, "5", "a worker's event loop blocks (`/block`)")
	needNode(t)
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers),
		"--health-interval", "1s", "--health-timeout", "1s", "--health-threshold", "3",
		"--", "node", appPath("app.js")}})
	l := startLoad(t, in.addr,
		stream{name: "GET /", clients: 4, req: get("/")},
		stream{name: "GET /slow?ms=50", clients: 2, req: get("/slow?ms=50")},
		stream{name: "POST /slow?ms=50", clients: 2, req: post("/slow?ms=50", 1024)},
	)
	time.Sleep(time.Second)
	from := in.logCount()
	began := time.Now()
	blockAt := l.since(began)
	blocked := in.getPid("/block")
	eject := in.waitLog("ejecting worker", from, 20*time.Second)
	ejectAt := l.since(eject.at)
	deadline := time.Now().Add(15 * time.Second)
	for alive(blocked) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	goneAt := l.since(time.Now())
	st, whole := in.awaitStatus(20*time.Second, func(st status) bool {
		ready := st.readyPids()
		return len(ready) == workers && ready[0] != blocked && ready[1] != blocked
	})
	wholeAt := l.since(time.Now())
	time.Sleep(time.Second)
	recs := l.stop()

	all := count(recs, nil)
	f.requests(all)
	// Requests in flight on the blocked worker are those that took longer
	// than any normal one could and were sent before it was ejected.
	stuck := func(r record) bool { return r.start < ejectAt && r.latency > time.Second }
	stuckT := count(recs, stuck)
	afterT := count(recs, func(r record) bool { return r.start >= ejectAt })
	f.add("ejected %s after it blocked (%v); process gone after %s; pool whole after %s",
		(ejectAt - blockAt).Round(10*time.Millisecond), eject.m["reason"], (goneAt - blockAt).Round(10*time.Millisecond),
		(wholeAt - blockAt).Round(10*time.Millisecond))
	stuckPosts := count(recs, func(r record) bool { return stuck(r) && r.stream == 2 })
	f.add("requests caught on the blocked worker: %d (%d GET, %d POST; %d ok, failed: %s), waited up to %s",
		stuckT.sent, stuckT.sent-stuckPosts.sent, stuckPosts.sent, stuckT.ok, stuckT.reasonsText(), ms(maxLatency(recs, stuck)))
	f.add("sent after the ejection: %d, %d failed", afterT.sent, afterT.failed())
	lat := latencies(recs, func(r record) bool { return !stuck(r) })
	f.add("latency of the others p50 %s p99 %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)))

	if blocked == 0 || alive(blocked) {
		t.Errorf("the blocked worker %d is still alive", blocked)
	}
	if !whole {
		t.Errorf("the pool is not whole after the blocked worker was replaced: %+v", st.Workers)
	}
	if afterT.failed() > 0 {
		t.Errorf("%d requests sent after the ejection failed: %s", afterT.failed(), afterT.reasonsText())
	}
	// Only requests caught on the blocked worker may fail.
	if other := count(recs, func(r record) bool { return !stuck(r) }); other.failed() > 0 {
		t.Errorf("%d requests not caught on the blocked worker failed: %s", other.failed(), other.reasonsText())
	}
	if rate := float64(all.ok) / float64(max(all.sent, 1)); rate < 0.99 {
		t.Errorf("success rate %.4f, want at least 0.99", rate)
	}
}
