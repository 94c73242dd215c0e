package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

// TestAdminHostCheck: the admin listener of a real percore answers 421,
// naming --admin-hosts, to a Host it does not serve (what a DNS-rebinding
// page sends), and 200 to IP addresses, localhost, the names of
// PERCORE_ADMIN_HOSTS and requests without a Host.
func TestAdminHostCheck(t *testing.T) {
	needNode(t)
	in := launchBin(t, percoreBin, []string{"PERCORE_ADMIN_HOSTS=percore.internal,admin.example"}, nil,
		"--workers", "1", "--control", "off", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)
	_, port, err := net.SplitHostPort(in.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, host string // host "-": no Host header, HTTP/1.0
		want       int
	}{
		{"/status", "evil.example", 421},
		{"/healthz", "evil.example:" + port, 421},
		{"/readyz", "127.0.0.1.evil.example", 421},
		{"/healthz", "127.0.0.1", 200},
		{"/readyz", "127.0.0.1:" + port, 200},
		{"/healthz", "[::1]:" + port, 200},
		{"/healthz", "localhost", 200},
		{"/status", "localhost:" + port, 200},
		{"/status", "percore.internal:" + port, 200},
		{"/readyz", "admin.example", 200},
		{"/healthz", "-", 200},
	} {
		req := "GET " + c.path + " HTTP/1.1\r\nHost: " + c.host + "\r\nConnection: close\r\n\r\n"
		if c.host == "-" {
			req = "GET " + c.path + " HTTP/1.0\r\n\r\n"
		}
		code, body := rawAdmin(t, in.admin, req)
		if code != c.want {
			t.Errorf("GET %s with Host %s: %d %q, want %d", c.path, c.host, code, body, c.want)
		} else if code == 421 && !strings.Contains(body, "--admin-hosts") {
			t.Errorf("GET %s with Host %s: 421 body %q does not name --admin-hosts", c.path, c.host, body)
		}
	}
}

// rawAdmin sends a raw request to addr and returns the answer's status and body.
func rawAdmin(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
