package main

import (
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxyWarnings returns the proxy's log lines at warn level or above so far.
func (in *instance) proxyWarnings() []map[string]any {
	in.mu.Lock()
	defer in.mu.Unlock()
	var w []map[string]any
	for _, m := range in.seen {
		l, _ := m["@level"].(string)
		if mod, _ := m["@module"].(string); mod == "percore.proxy" && (l == "warn" || l == "error") {
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
	if w := in.proxyWarnings(); len(w) > 0 {
		t.Errorf("client faults logged %d warnings, first: %v", len(w), w[0])
	}
}

// TestProxyBodyTimeoutEndsStalledUpload: a client that stops sending a
// body it has started gets 408 after --body-timeout, and the worker sees its
// request end; before, once fasthttp's first 8 KiB were in, nothing bounded
// the wait.
func TestProxyBodyTimeoutEndsStalledUpload(t *testing.T) {
	needNode(t)
	const limit = time.Second
	in := start(t, "--workers", "1", "--health-interval", "off", "--body-timeout", limit.String(),
		"--", "node", proxyAppJS())

	for _, sent := range []int{100, 20 << 10} { // within fasthttp's read-ahead, and past it
		t.Run(strconv.Itoa(sent)+" bytes then silence", func(t *testing.T) {
			before := stats(t, in)
			c, err := net.Dial("tcp", in.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			head := "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
			if _, err := io.WriteString(c, head+strings.Repeat("a", sent)); err != nil {
				t.Fatal(err)
			}
			stalled := time.Now()
			out, _ := io.ReadAll(c)
			took := time.Since(stalled)
			if statusOf(string(out)) != 408 {
				t.Errorf("stalled body answered %.80q, want 408", out)
			}
			if took < limit-200*time.Millisecond || took > limit+2*time.Second {
				t.Errorf("answered %s after the body stalled, want at the %s body timeout", took, limit)
			}
			if sent > 8<<10 {
				// The request reached the worker; it must see it end.
				deadline := time.Now().Add(5 * time.Second)
				for s := stats(t, in); s.Aborted == before.Aborted; s = stats(t, in) {
					if time.Now().After(deadline) {
						t.Fatalf("the worker still holds the stalled request: %+v", s)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	t.Run("client leaves mid-body", func(t *testing.T) {
		// The body stream ends early without an error: it is the client's
		// fault, not a 502 counted against the worker.
		before := stats(t, in)
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("a", 20<<10))
		time.Sleep(100 * time.Millisecond) // the request reaches the worker
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for s := stats(t, in); s.Aborted == before.Aborted; s = stats(t, in) {
			if time.Now().After(deadline) {
				t.Fatalf("the worker still holds the abandoned request: %+v", s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if got := readyz(t, in); got != 200 {
		t.Errorf("/readyz = %d after stalled uploads, want 200", got)
	}
	if w := in.proxyWarnings(); len(w) > 0 {
		t.Errorf("stalled uploads logged %d warnings, first: %v", len(w), w[0])
	}
}

// TestProxyBareLFRequestGets400AtOnce: a request whose lines all end in a
// bare LF never shows fasthttp the CRLF CRLF it waits for; it used to wait
// for the header timeout (20s) and get 408.
func TestProxyBareLFRequestGets400AtOnce(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())
	before := stats(t, in)
	for _, raw := range []string{
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET / HTTP/1.0\n\n",
		"\nGET / HTTP/1.1\nHost: x\nX-A: a\n\n",
		"GET / HTTP/1.1\nHost: x\n\r\n",
		"POST /upload HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello",
	} {
		began := time.Now()
		out := rawExchange(t, in.addr, raw, 5*time.Second)
		if took := time.Since(began); statusOf(out) != 400 || took > time.Second {
			t.Errorf("%q: %.60q after %s, want 400 within 1s", raw, out, took)
		}
	}
	// Blank lines in a body are a body's business.
	for _, raw := range []string{
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\na\n\n\nb\n",
		"\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	} {
		if out := rawExchange(t, in.addr, raw, 5*time.Second); statusOf(out) != 200 {
			t.Errorf("%q: %.60q, want 200", raw, out)
		}
	}
	if s := stats(t, in); s.Requests != before.Requests+2 {
		t.Errorf("the worker saw %d requests, want %d", s.Requests, before.Requests+2)
	}
}

// TestReloadDoesNotResendAbandonedRequests: a request whose client left is
// still in flight on a worker being replaced; at the drain deadline the old
// worker is killed, and the request, a GET, used to be retried on the new
// worker for nobody.
func TestReloadDoesNotResendAbandonedRequests(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--shutdown-timeout", "1s",
		"--control", controlPath(t), "--", "node", proxyAppJS())
	before := stats(t, in)

	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /slow?ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s := stats(t, in); s.Requests == before.Requests; s = stats(t, in) {
		if time.Now().After(deadline) {
			t.Fatal("the worker never got the long request")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Close() // the client gives up

	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 30*time.Second)
	// The old worker was killed with the request on it; a retry, if any, has
	// reached the new worker by the time it answers this.
	time.Sleep(200 * time.Millisecond)
	if s := stats(t, in); s.Requests != 0 {
		t.Errorf("the new worker got %d requests, want 0: the abandoned request was sent again", s.Requests)
	}
	if got := readyz(t, in); got != 200 {
		t.Errorf("/readyz = %d after the reload, want 200", got)
	}
}

// requestsByCode sums percore_requests_total by its code label.
func requestsByCode(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	sums := map[string]float64{}
	for _, m := range scrape(t, in)["percore_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" {
				sums[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return sums
}

// TestRefusedHTTPVersionIsAClientError: a request in an HTTP version
// percore does not speak gets 505 (RFC 9110 section 15.6.6), but it is the
// client's fault: /metrics counts it with code="4xx" and /status leaves
// errors_5xx alone. Both once counted it as a server error.
func TestRefusedHTTPVersionIsAClientError(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())
	before := requestsByCode(t, in)
	for _, version := range []string{"HTTP/1.2", "HTTP/2.0"} {
		if out := rawExchange(t, in.addr, "GET / "+version+"\r\nHost: x\r\n\r\n", 5*time.Second); statusOf(out) != 505 {
			t.Errorf("GET / %s: %.60q, want 505", version, out)
		}
	}
	after := requestsByCode(t, in)
	if d4, d5 := after["4xx"]-before["4xx"], after["5xx"]-before["5xx"]; d4 != 2 || d5 != 0 {
		t.Errorf("percore_requests_total rose by %v with code=\"4xx\" and %v with code=\"5xx\"; want 2 and 0", d4, d5)
	}
	if st := getStatus(t, in); st.Errors5xx != 0 {
		t.Errorf("/status errors_5xx = %d after refused versions, want 0", st.Errors5xx)
	}
}
