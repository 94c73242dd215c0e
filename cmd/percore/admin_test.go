package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// probeAll asks url n times, one after the other, each on a new connection
// with a 1 s client timeout, as a platform's probe does; it returns how
// many answered want within the second, the slowest answer, and what the
// others got.
func probeAll(url string, n, want int) (ok int, slowest time.Duration, failed []string) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		begun := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			failed = append(failed, err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(begun)
		slowest = max(slowest, took)
		if resp.StatusCode != want || took > time.Second {
			failed = append(failed, fmt.Sprintf("%d in %s", resp.StatusCode, took))
			continue
		}
		ok++
	}
	return ok, slowest, failed
}

// TestAdminProbesWhileConnectionsHeld: one client holding 300 connections
// to the admin port, each with a header that never ends, does not fail the
// platform's probes: every /healthz and /readyz probe answers 200 within
// its 1 s timeout.
func TestAdminProbesWhileConnectionsHeld(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--control", "off", "--", "node", appJS())
	const conns, probes = 300, 30
	held := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	begun := time.Now()
	for range conns {
		c, err := net.DialTimeout("tcp", in.admin, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(held), err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
			t.Fatalf("write a partial header: %v", err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		ok, slowest, failed := probeAll("http://"+in.admin+path, probes, 200)
		t.Logf("%d connections held with partial headers: %s %d of %d probes 200 within 1s (slowest %s)",
			len(held), path, ok, probes, slowest.Round(time.Microsecond))
		if ok != probes {
			t.Errorf("%s: %d of %d probes answered 200 within 1s; the others: %q", path, ok, probes, failed)
		}
	}
	// The admin listener's read timeout (5s) closes held connections: the
	// probes must have met them before.
	if took := time.Since(begun); took >= 5*time.Second {
		t.Fatalf("holding and probing took %s, past the admin read timeout: the probes did not meet the crowd", took)
	}
}
