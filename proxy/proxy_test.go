package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/internal/testutil"
)

func startRecorder(t *testing.T) (*recorder, string) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv.Listener.Addr().String()
}

func TestResponseTimeoutCoversTheHeaderOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			time.Sleep(600 * time.Millisecond)
		case "/stream":
			w.Header().Set("Content-Type", "text/plain")
			for i := 0; i < 5; i++ {
				fmt.Fprintf(w, "piece %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond) // 500ms in all, over the timeout
			}
		}
	}))
	defer srv.Close()
	p := startProxy(t, Config{ResponseTimeout: 200 * time.Millisecond}, ServerConfig{}, srv.Listener.Addr().String())

	began := time.Now()
	resp, _ := rawRoundTrip(t, p.addr, "GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("hung worker: status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(began); d > 550*time.Millisecond {
		t.Errorf("504 after %s, want after the 200ms timeout", d)
	}
	resp, body := rawRoundTrip(t, p.addr, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || strings.Count(body, "piece") != 5 {
		t.Errorf("stream longer than the timeout: %d %q, want all 5 pieces", resp.StatusCode, body)
	}
}

func TestMaxBody(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{MaxBody: 10}, ServerConfig{}, addr)

	resp, _ := rawRoundTrip(t, p.addr, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Errorf("Content-Length over the limit: %d (close %v), want 413 and close", resp.StatusCode, resp.Close)
	}
	resp, _ = rawRoundTrip(t, p.addr, "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	resp, _ = rawRoundTrip(t, p.addr, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("chunked body at the limit: %d, want 200", resp.StatusCode)
	}
	for _, r := range rec.all() {
		switch r.uri {
		case "/a":
			t.Error("the worker got a request whose Content-Length is over the limit")
		case "/b":
			if r.err == nil {
				t.Errorf("the worker read a whole body over the limit: %q", r.body)
			}
		case "/c":
			if r.body != "0123456789" {
				t.Errorf("body at the limit arrived as %q", r.body)
			}
		}
	}
}

func TestMaxBodyBeforeContinue(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{MaxBody: 10}, ServerConfig{}, addr)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
		t.Errorf("answer to the expectation: %q, %v; want 413 instead of 100 Continue", line, err)
	}
	resp, _ := rawRoundTrip(t, p.addr, "PUT /small HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
	if resp.StatusCode != 200 {
		t.Errorf("small body with an expectation: %d", resp.StatusCode)
	}
	if got := rec.all(); len(got) != 1 || got[0].body != "abc" {
		t.Errorf("worker got %+v", got)
	}
}

func TestBrokenChunkedBodyNeverReachesAWorker(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{}, ServerConfig{}, addr)
	for _, body := range []string{"zz\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n"} {
		resp, _ := rawRoundTrip(t, p.addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("chunked body %q: status %d, want 400", body, resp.StatusCode)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("the worker got %d broken requests", n)
	}
}

func TestClientGoneMidBody(t *testing.T) {
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		got <- err
	}))
	defer srv.Close()
	p := startProxy(t, Config{}, ServerConfig{}, srv.Listener.Addr().String())
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
	c.Write(bytes.Repeat([]byte("x"), 100000))
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Error("the worker read a whole body the client never sent")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the worker's request did not end after the client left")
	}
	waitFor(t, 2*time.Second, "in flight back to 0", func() bool { return (*p.pool.backends.Load())[0].inflight.Load() == 0 })
}

func TestRequestIDs(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{}, ServerConfig{}, addr)
	cases := []struct {
		sent string
		keep bool
	}{
		{"", false},
		{"abc-123", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"caf\xc3\xa9", false},
	}
	seen := map[string]bool{}
	for i, c := range cases {
		raw := fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n", i)
		if c.sent != "" {
			raw += "X-Request-Id: " + c.sent + "\r\n"
		}
		resp, _ := rawRoundTrip(t, p.addr, raw+"\r\n")
		id := resp.Header.Get("X-Request-Id")
		worker := rec.all()[i].header.Get("X-Request-Id")
		if id == "" || worker != id {
			t.Errorf("case %d: client got %q, worker %q; want the same id", i, id, worker)
		}
		if (id == c.sent) != c.keep {
			t.Errorf("case %d: sent %q, got %q, keep %v", i, c.sent, id, c.keep)
		}
		if seen[id] {
			t.Errorf("id %q given twice", id)
		}
		seen[id] = true
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	ids := newRequestIDs()
	other := newRequestIDs()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		for _, r := range []*requestIDs{ids, other} {
			id := string(r.appendNext(nil))
			if seen[id] || !validRequestID([]byte(id)) {
				t.Fatalf("id %q repeated or invalid", id)
			}
			seen[id] = true
		}
	}
}

func TestForwardsHTTP10AsHTTP11(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{}, ServerConfig{}, addr)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /old HTTP/1.0\r\nHost: a\r\n\r\n")
	out, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(out), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(out), "ok GET /old") ||
		strings.Contains(string(out), "chunked") {
		t.Errorf("answer to HTTP/1.0: %q", out)
	}
	if r := rec.all()[0]; r.proto != "HTTP/1.1" || r.header.Get("Connection") != "" {
		t.Errorf("worker got %s with Connection %q, want HTTP/1.1 and no Connection", r.proto, r.header.Get("Connection"))
	}
}

func TestAbsoluteFormTarget(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{}, ServerConfig{}, addr)
	resp, _ := rawRoundTrip(t, p.addr, "GET http://app.test/p?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// RFC 9112 section 3.2.2: the target's authority wins over Host.
	if r := rec.all()[0]; r.uri != "/p?q=1" || r.header.Get("X-Forwarded-Host") != "app.test" {
		t.Errorf("worker got %q with X-Forwarded-Host %q, want /p?q=1 and app.test", r.uri, r.header.Get("X-Forwarded-Host"))
	}
}

func TestAccessLog(t *testing.T) {
	_, addr := startRecorder(t)
	var buf testutil.LockedBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true})
	p := startProxy(t, Config{AccessLog: log}, ServerConfig{}, addr)
	resp, _ := rawRoundTrip(t, p.addr, "GET /path?token=secret HTTP/1.1\r\nHost: a\r\nX-Request-Id: rid-1\r\n\r\n")
	resp.Body.Close()
	waitFor(t, time.Second, "an access log line", func() bool { return strings.Contains(buf.String(), "rid-1") })
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"method": "GET", "path": "/path", "status": float64(200), "bytes": float64(len("ok GET /path?token=secret")),
		"worker": float64(0), "request_id": "rid-1"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["duration"]; !ok || strings.Contains(buf.String(), "secret") {
		t.Errorf("access log line %v: want a duration and no query string", line)
	}
}

func TestServerAnswersUnreadableRequests(t *testing.T) {
	rec, addr := startRecorder(t)
	p := startProxy(t, Config{}, ServerConfig{HeaderTimeout: 300 * time.Millisecond, HeaderBufferSize: 4 << 10}, addr)

	resp, _ := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 5000)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("header over the buffer: %d, want 431", resp.StatusCode)
	}
	began := time.Now()
	resp, _ = rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: a\r\n")
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("unfinished header: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(began); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("408 after %s, want after the 300ms header timeout", d)
	}

	// A body slower than the header timeout is not cut.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
	for _, b := range []string{"a", "b", "c", "d"} {
		time.Sleep(150 * time.Millisecond)
		if _, err := io.WriteString(c, b); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("slow body: %v, %v", r, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].body != "abcd" {
		t.Errorf("worker got %+v, want the slow body whole", got)
	}
}

func TestResponseHopByHopAndRequestID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Request-Id", "from-worker")
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	p := startProxy(t, Config{}, ServerConfig{}, srv.Listener.Addr().String())
	resp, _ := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: mine\r\n\r\n")
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop headers reached the client: %v", resp.Header)
	}
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "mine" {
		t.Errorf("X-Request-Id = %v, want the request's id once", got)
	}
}
