//go:build chaos

package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// breakage is one way testdata/bad-app.js breaks HTTP, and what a client
// of percore must see.
type breakage struct {
	path string
	// begun: the worker's status line and header were fine and percore
	// has passed them on, so the client can only see the answer cut short
	// (never complete); otherwise the client gets 502.
	begun bool
	// raw: the app writes the answer itself to the socket, past node's
	// response. On a kept-alive connection percore cannot prove such an
	// answer its request's (it carries no token), so it is never
	// delivered there: a GET goes again on a new connection, where the
	// answer is its request's; a POST, which may not go again, gets 502.
	raw bool
}

var breakages = []breakage{
	{path: "/close"},
	{path: "/reset"},
	{path: "/cut-head"},
	{path: "/cut-body"},
	{path: "/garbage"},
	{path: "/bad-status"},
	{path: "/bad-header"},
	{path: "/two-lengths"},
	{path: "/huge-header"},
	{path: "/cut-stream", begun: true, raw: true},
	{path: "/cut-chunked", begun: true, raw: true},
	{path: "/bad-chunk", begun: true, raw: true},
}

// TestBrokenWorkerAnswers runs a worker that closes connections mid-answer
// or answers with malformed HTTP. The client gets 502 at once (or, when
// the answer had begun, sees it cut short); the proxy's pool recovers: a
// normal request right after succeeds, and so does the normal traffic
// meanwhile.
func TestBrokenWorkerAnswers(t *testing.T) {
	f := book.row(t, "7", "a worker cuts answers or sends malformed HTTP")
	needNode(t)
	const workers, reps = 2, 3
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--", "node", appPath("bad-app.js")}})
	l := startLoad(t, in.addr, stream{name: "GET /", clients: 2, req: get("/"), pace: 5 * time.Millisecond})
	time.Sleep(500 * time.Millisecond)

	type result struct {
		b      breakage
		method string
		bad    record
		next   record // the normal request sent right after
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for _, b := range breakages {
		for _, method := range []string{"GET", "POST"} {
			for range reps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body []byte
					if method == "POST" {
						body = []byte("payload")
					}
					bad := once(in.addr, request{method: method, path: b.path, body: body}, 15*time.Second)
					next := once(in.addr, request{method: "GET", path: "/"}, 15*time.Second)
					mu.Lock()
					results = append(results, result{b, method, bad, next})
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	recs := l.stop()

	normal := count(recs, nil)
	var nexts []record
	for _, r := range results {
		nexts = append(nexts, r.next)
	}
	nextT := count(nexts, nil)
	all := normal
	all.sent += nextT.sent
	all.ok += nextT.ok
	for k, v := range nextT.reasons {
		all.reasons[k] += v
	}
	f.requests(all)
	// What the breakages got, grouped: "GET 502 <100ms: /garbage /bad-status".
	groups := map[string][]string{}
	var slowest time.Duration
	reported := map[string]bool{} // one error per path, method and kind of failure
	errorf := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !reported[msg] {
			reported[msg] = true
			t.Error(msg)
		}
	}
	for _, r := range results {
		key := r.method + " " + r.b.path
		label := r.bad.label()
		group := fmt.Sprintf("%s %s %s", r.method, label, latencyClass(r.bad.latency))
		if !slices.Contains(groups[group], r.b.path) {
			groups[group] = append(groups[group], r.b.path)
		}
		slowest = max(slowest, r.bad.latency)
		rawPOST := r.b.raw && r.method == "POST" && r.bad.out == outHTTP && r.bad.code == 502
		if r.b.begun && r.bad.out != outTruncated && !rawPOST {
			errorf("%s: %s after %s; the answer had begun, so the client must see it cut short", key, label, latencyClass(r.bad.latency))
		}
		if !r.b.begun && !(r.bad.out == outHTTP && r.bad.code == 502) {
			errorf("%s: %s after %s; want 502", key, label, latencyClass(r.bad.latency))
		}
		if r.bad.latency > 5*time.Second {
			errorf("%s: the answer took %s; want it within 5s", key, latencyClass(r.bad.latency))
		}
		if r.next.out != outOK {
			errorf("the normal request right after %s: %s", key, r.next.label())
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	var parts []string
	for _, g := range names {
		parts = append(parts, g+": "+strings.Join(groups[g], " "))
	}
	f.add("%d broken answers (%d paths × GET, POST × %d): %s", len(results), len(breakages), reps, strings.Join(parts, "; "))
	f.add("slowest broken answer %s; normal requests right after: %d of %d ok; normal traffic meanwhile: %d of %d ok",
		ms(slowest), nextT.ok, nextT.sent, normal.ok, normal.sent)
	if normal.failed() > 0 {
		t.Errorf("normal traffic: %d of %d requests failed: %s", normal.failed(), normal.sent, normal.reasonsText())
	}
}

// latencyClass puts a latency in a coarse bucket, so that the figures group.
func latencyClass(d time.Duration) string {
	switch {
	case d < 100*time.Millisecond:
		return "<100ms"
	case d < time.Second:
		return "<1s"
	}
	return fmt.Sprintf("%.0fs", d.Seconds())
}
