package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// warnings returns percore's own log lines at warn level or above so far.
func (in *instance) warnings() []map[string]any {
	in.mu.Lock()
	defer in.mu.Unlock()
	var w []map[string]any
	for _, m := range in.seen {
		if l, _ := m["@level"].(string); l == "warn" || l == "error" {
			w = append(w, m)
		}
	}
	return w
}

// readyz returns the status of the admin /readyz.
func readyz(t *testing.T, in *instance) int {
	t.Helper()
	return status(t, "http://"+in.admin+"/readyz")
}

// TestClientFaultsNeverEjectWorkers sends, ten times each, requests that
// percore once passed to its client to the workers, which refused to write
// them: each failure counted against the worker, whose ejection turned
// /readyz to 503, with one WARN per request.
func TestClientFaultsNeverEjectWorkers(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())
	before := stats(t, in)

	// HTTP/1.0 needs no Host; the worker gets the listener's address.
	for i := 0; i < 10; i++ {
		out := rawExchange(t, in.addr, "GET /headers HTTP/1.0\r\n\r\n", 5*time.Second)
		if statusOf(out) != 200 {
			t.Fatalf("HTTP/1.0 without Host, request %d: %.80q, want 200", i, out)
		}
		if i == 0 {
			var seen struct {
				Headers map[string]string `json:"headers"`
			}
			body := out[strings.Index(out, "\r\n\r\n")+4:]
			if err := json.Unmarshal([]byte(body), &seen); err != nil {
				t.Fatalf("decode %q: %v", body, err)
			}
			if seen.Headers["host"] != in.addr {
				t.Errorf("the worker saw Host %q, want the listener's address %s", seen.Headers["host"], in.addr)
			}
		}
	}

	refused := []struct{ name, raw string }{
		{"absolute-form https target", "GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"absolute-form ftp target", "GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"absolute-form target without a host", "GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"Connection: Content-Length", "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"},
		{"Connection: keep-alive, Transfer-Encoding",
			"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"Connection: host", "GET / HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n"},
	}
	for _, c := range refused {
		for i := 0; i < 10; i++ {
			out := rawExchange(t, in.addr, c.raw, 5*time.Second)
			if statusOf(out) != 400 {
				t.Fatalf("%s, request %d: %.80q, want 400 and the connection closed", c.name, i, out)
			}
		}
	}

	if s := stats(t, in); s.Requests != before.Requests+10 {
		t.Errorf("the worker saw %d requests, want %d: a refused request reached it", s.Requests, before.Requests+10)
	}
	if got := readyz(t, in); got != 200 {
		t.Errorf("/readyz = %d after client faults, want 200", got)
	}
	if w := in.warnings(); len(w) > 0 {
		t.Errorf("client faults logged %d warnings, first: %v", len(w), w[0])
	}
}
