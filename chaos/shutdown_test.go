//go:build chaos

package chaos

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTermUnderLoad sends SIGTERM in the middle of a load. Every request
// percore accepted completes with 200; the others find the connection
// refused (or, on a keep-alive connection, closed before any byte of an
// answer: the request was never read). /readyz answers 503 no later than the
// first refused connection.
func TestTermUnderLoad(t *testing.T) {
	f := book.row(t, "3", "`SIGTERM` in the middle of the load")
	needNode(t)
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--", "node", appPath("app.js")}})
	l := startLoad(t, in.addr,
		stream{name: "GET /", clients: 4, req: get("/")},
		stream{name: "GET /slow?ms=500", clients: 4, req: get("/slow?ms=500"), stagger: 125 * time.Millisecond},
		stream{name: "POST /slow?ms=500", clients: 2, req: post("/slow?ms=500", 1024), stagger: 250 * time.Millisecond},
	)
	ready := pollReadyz(in.admin, l)
	time.Sleep(2 * time.Second)
	term := l.since(time.Now())
	in.signal(syscall.SIGTERM)
	code := in.waitExitCode(20 * time.Second)
	exitAfter := l.since(in.exitAt) - term
	recs := l.stop()
	polls := ready.stop()

	all := count(recs, nil)
	f.requests(all)
	before := count(recs, func(r record) bool { return r.start < term })
	after := count(recs, func(r record) bool { return r.start >= term })
	f.add("exit code %d, %s after SIGTERM", code, exitAfter.Round(10*time.Millisecond))
	inflight := count(recs, func(r record) bool { return r.start < term && r.end() > term })
	f.add("sent before SIGTERM: %d, %d ok (%d in flight at SIGTERM, %d of them ok)", before.sent, before.ok, inflight.sent, inflight.ok)
	f.add("sent after: %d, %d ok, %s", after.sent, after.ok, after.reasonsText())

	// Promise 1: a request percore accepted completes.
	if before.failed() > 0 {
		t.Errorf("%d requests sent before SIGTERM did not complete: %s", before.failed(), before.reasonsText())
	}
	for reason, n := range after.reasons {
		switch reason {
		case "refused", "closed-idle":
		default:
			t.Errorf("%d requests sent after SIGTERM ended %q: only 200, a refused connection, or a keep-alive connection closed before the request was read are allowed", n, reason)
		}
	}
	if inflight.sent == 0 {
		t.Error("no request was in flight at SIGTERM")
	}
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}

	// Promise 2: /readyz says 503 before connections are refused.
	firstRefused, firstRefusedEnd := time.Duration(-1), time.Duration(-1)
	for _, r := range recs {
		if r.out == outRefused && (firstRefused < 0 || r.start < firstRefused) {
			firstRefused, firstRefusedEnd = r.start, r.end()
		}
	}
	last200Sent, first503 := time.Duration(-1), time.Duration(-1)
	for _, p := range polls {
		switch p.code {
		case 200:
			last200Sent = max(last200Sent, p.sent)
		case 503:
			if first503 < 0 || p.recv < first503 {
				first503 = p.recv
			}
		}
	}
	if firstRefused < 0 || first503 < 0 {
		t.Fatalf("no refused connection (%v) or no 503 from /readyz (%v) after SIGTERM", firstRefused, first503)
	}
	f.add("/readyz turned 503 between %s (last 200 asked) and %s (first 503 answered) after SIGTERM; first connection refused at %s (%d polls)",
		ms(last200Sent-term), ms(first503-term), ms(firstRefused-term), len(polls))
	if last200Sent > firstRefusedEnd {
		t.Errorf("/readyz answered 200 to a poll sent %s after SIGTERM, after a connection was refused at %s",
			last200Sent-term, firstRefused-term)
	}
}

// poll is one /readyz request: when it was sent and answered (on a load's
// clock) and its status (0: no answer).
type poll struct {
	sent, recv time.Duration
	code       int
}

// readyzPoller asks /readyz in a tight loop from two keep-alive clients.
type readyzPoller struct {
	stopCh chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex // protects polls
	polls  []poll
}

func pollReadyz(admin string, l *load) *readyzPoller {
	p := &readyzPoller{stopCh: make(chan struct{})}
	for range 2 {
		p.wg.Add(1)
		go p.run(admin, l)
	}
	return p
}

func (p *readyzPoller) run(admin string, l *load) {
	defer p.wg.Done()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	var mine []poll
	defer func() {
		p.mu.Lock()
		p.polls = append(p.polls, mine...)
		p.mu.Unlock()
	}()
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < 500_000 && time.Now().Before(deadline); n++ {
		select {
		case <-p.stopCh:
			return
		default:
		}
		sent := time.Now()
		resp, err := c.Get("http://" + admin + "/readyz")
		code := 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // the status is what counts
			resp.Body.Close()
			code = resp.StatusCode
		} else {
			time.Sleep(5 * time.Millisecond) // percore has exited: no need to spin
		}
		mine = append(mine, poll{sent: l.since(sent), recv: l.since(time.Now()), code: code})
	}
}

func (p *readyzPoller) stop() []poll {
	p.once.Do(func() { close(p.stopCh) })
	p.wg.Wait()
	return p.polls
}
