package health

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// partialRequest is a request whose header never ends.
const partialRequest = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

// holdPartial opens n connections to addr, sends each a header that never
// ends and keeps them open until the test ends. It returns how many it
// opened.
func holdPartial(t *testing.T, addr string, n int) int {
	t.Helper()
	held := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d held connections: %v", len(held), err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, partialRequest); err != nil {
			t.Fatalf("write a partial header: %v", err)
		}
	}
	return len(held)
}

// probeResult tallies probes of one path.
type probeResult struct {
	ok      int           // 200 within the timeout
	slowest time.Duration // of the answered ones
	failed  []string      // what the others got
}

// probeSeq asks url n times, one after the other, each on a new connection
// with a client timeout of timeout, as a platform's probe does.
func probeSeq(url string, n int, timeout time.Duration) probeResult {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	var r probeResult
	for range n {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			r.failed = append(r.failed, err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		r.slowest = max(r.slowest, took)
		if resp.StatusCode != 200 || took > timeout {
			r.failed = append(r.failed, resp.Status+" in "+took.String())
			continue
		}
		r.ok++
	}
	return r
}

// TestProbesAnswerWhileConnectionsHeld: 300 connections that hold partial
// headers open do not starve /healthz and /readyz: every probe, each on a
// new connection, answers 200 within its 1 s timeout.
func TestProbesAnswerWhileConnectionsHeld(t *testing.T) {
	w := &fakeWorkers{}
	w.ready.Store(1)
	_, base := startServer(t, Config{Workers: w})
	addr := strings.TrimPrefix(base, "http://")
	const conns, probes = 300, 30
	begun := time.Now()
	held := holdPartial(t, addr, conns)
	results := map[string]probeResult{}
	for _, p := range []string{"/healthz", "/readyz"} {
		results[p] = probeSeq(base+p, probes, time.Second)
	}
	took := time.Since(begun)
	for _, p := range []string{"/healthz", "/readyz"} {
		r := results[p]
		t.Logf("%d connections held with partial headers: %s %d of %d probes 200 within 1s (slowest %s)",
			held, p, r.ok, probes, r.slowest.Round(time.Microsecond))
		if r.ok != probes {
			t.Errorf("%s: %d of %d probes answered 200 within 1s; the first others: %q", p, r.ok, probes,
				r.failed[:min(5, len(r.failed))])
		}
	}
	if took >= readTimeout {
		t.Fatalf("holding and probing took %s, past the %s read timeout that frees held connections: "+
			"the probes did not meet the crowd", took, readTimeout)
	}
}
