package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// framingWorker is a raw worker: for each request on a keep-alive
// connection it writes what answer returns, then calls after (if any) with
// the connection.
type framingWorker struct {
	*rawServer
	answer func(path, body string) (string, func(net.Conn))
	silent bool // echoes no token, as a worker without percore's preload
}

// startFramingWorker starts a raw worker that echoes each request's token
// in its answer's head, as percore's preload does.
func startFramingWorker(t *testing.T, answer func(path, body string) (string, func(net.Conn))) *framingWorker {
	t.Helper()
	w := &framingWorker{answer: answer}
	w.rawServer = startRawServer(t, w.serve)
	return w
}

// startSilentWorker starts a raw worker that echoes no token.
func startSilentWorker(t *testing.T, answer func(path, body string) (string, func(net.Conn))) *framingWorker {
	t.Helper()
	w := &framingWorker{answer: answer, silent: true}
	w.rawServer = startRawServer(t, w.serve)
	return w
}

// tokenMark in an answer is where the worker puts the token field; an
// answer without it gets the field in its first final head.
const tokenMark = "\x00token\x00"

// withToken puts the token field into the head of the final response at
// the start of answer, after any interim ones.
func withToken(answer, tok string) string {
	at := 0
	for strings.HasPrefix(answer[at:], "HTTP/") {
		line := answer[at:]
		if i := strings.Index(line, "\r\n"); i >= 0 {
			line = line[:i]
		}
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "1") && f[1] != "101" {
			end := strings.Index(answer[at:], "\r\n\r\n")
			if end < 0 {
				return answer
			}
			at += end + 4
			continue
		}
		nl := strings.Index(answer[at:], "\r\n")
		if nl < 0 {
			return answer
		}
		i := at + nl + 2
		return answer[:i] + TokenHeader + ": " + tok + "\r\n" + answer[i:]
	}
	return answer
}

func (w *framingWorker) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		head, err := readHeadLines(br)
		if err != nil {
			return
		}
		path := strings.Fields(head)[1]
		var body []byte
		var tok string
		for _, line := range strings.Split(head, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, TokenHeader) {
				tok = strings.TrimSpace(v)
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				body = make([]byte, n)
				if _, err := io.ReadFull(br, body); err != nil {
					return
				}
			}
		}
		answer, after := w.answer(path, string(body))
		switch {
		case w.silent || tok == "":
			answer = strings.ReplaceAll(answer, tokenMark, "")
		case strings.Contains(answer, tokenMark):
			answer = strings.ReplaceAll(answer, tokenMark, TokenHeader+": "+tok+"\r\n")
		default:
			answer = withToken(answer, tok)
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		if after != nil {
			after(c)
		}
	}
}

// injected is a whole response a worker writes where it must not.
const injected = "HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 9\r\n\r\nINJECTED\n"

func plainAnswer(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// A pooled connection on which the worker wrote after its response, or
// which it closed, never gives the next request an answer that is not its
// own, and the worker is not blamed. A POST, which cannot be sent again,
// is kept off it by a look before reuse and goes on a new connection with
// its body whole; a GET spares the look, fails on it or gets an answer
// without its token, and goes again on another connection.
func TestReadablePooledConnectionIsDiscardedNotBlamed(t *testing.T) {
	for _, c := range []struct {
		name  string
		after func(net.Conn)
	}{
		{"bytes after the response", func(c net.Conn) {
			time.Sleep(30 * time.Millisecond) // after the proxy pooled the connection
			_, _ = io.WriteString(c, injected)
		}},
		{"connection closed after the response", func(c net.Conn) { c.Close() }},
	} {
		for _, r := range []struct{ method, request, want string }{
			{"POST", "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\npayload", "for /post payload\n"},
			{"GET", "GET /get HTTP/1.1\r\nHost: a\r\n\r\n", "for /get \n"},
		} {
			t.Run(c.name+"/"+r.method, func(t *testing.T) {
				done := make(chan struct{})
				w := startFramingWorker(t, func(path, body string) (string, func(net.Conn)) {
					if path == "/first" {
						return plainAnswer("first\n"), func(conn net.Conn) { c.after(conn); close(done) }
					}
					return plainAnswer("for " + path + " " + body + "\n"), nil
				})
				p := startProxy(t, Config{}, ServerConfig{}, w.addr())
				if resp, body := rawRoundTrip(t, p.addr, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 || body != "first\n" {
					t.Fatalf("GET /first = %d %q", resp.StatusCode, body)
				}
				<-done
				// The worker's write or close reaches the proxy's socket at
				// once on loopback, but not synchronously: leave it a moment.
				time.Sleep(20 * time.Millisecond)
				resp, body := rawRoundTrip(t, p.addr, r.request)
				if resp.StatusCode != 200 || body != r.want || resp.Header.Get("X-Injected") != "" {
					t.Errorf("%s after it = %d %q, want 200 %q", r.method, resp.StatusCode, body, r.want)
				}
				if n := w.accepted.Load(); n != 2 {
					t.Errorf("the worker accepted %d connections, want 2: the readable one must not carry an answer", n)
				}
				for _, b := range *p.pool.backends.Load() {
					if n := b.fails.Load(); n != 0 {
						t.Errorf("worker %d has %d failures, want 0", b.slot, n)
					}
				}
			})
		}
	}
}

// Worker answers that break framing or status rules, one request each on
// its own client connection; after each, the next client gets its own answer.
func TestWorkerFramingFaults(t *testing.T) {
	// More than the proxy's read buffer, so that some of it is still in the
	// socket when the response ends.
	junk := strings.Repeat("x", 20000) + "\r\n" + injected
	answers := map[string]string{
		"/long":           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n" + junk,
		"/long-streamed":  "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("a", 5000) + junk,
		"/chunked-extra":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nok\n\r\n0\r\n\r\n" + junk,
		"/chunked-broken": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\nzz\r\n",
		"/switch":         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"/099":            "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
		"/600":            "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n",
		"/interim":        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + plainAnswer("final\n"),
		"/no-content":     "HTTP/1.1 204 No Content\r\n\r\n" + junk,
	}
	w := startFramingWorker(t, func(path, _ string) (string, func(net.Conn)) {
		if a, ok := answers[path]; ok {
			return a, nil
		}
		return plainAnswer("for " + path + "\n"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/long", 200, "ok\n"},
		{"/long-streamed", 200, strings.Repeat("a", 5000)},
		{"/chunked-extra", 200, "ok\n"},
		{"/switch", 502, "Bad Gateway\n"},
		{"/099", 502, "Bad Gateway\n"},
		{"/600", 502, "Bad Gateway\n"},
		{"/interim", 200, "final\n"},
		{"/no-content", 204, ""},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, body := rawRoundTrip(t, p.addr, "GET "+c.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp.StatusCode != c.status || body != c.body || resp.Header.Get("X-Injected") != "" {
				t.Errorf("got %d %.40q, want %d %.40q", resp.StatusCode, body, c.status, c.body)
			}
			for _, next := range []string{"/alice", "/bob"} {
				resp, body := rawRoundTrip(t, p.addr, "GET "+next+" HTTP/1.1\r\nHost: a\r\n\r\n")
				if resp.StatusCode != 200 || body != "for "+next+"\n" {
					t.Errorf("GET %s after it = %d %q", next, resp.StatusCode, body)
				}
			}
		})
	}
	t.Run("/chunked-broken", func(t *testing.T) {
		// The client sees the body cut (no last chunk), never a byte more.
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "GET /chunked-broken HTTP/1.1\r\nHost: a\r\n\r\n")
		out, _ := io.ReadAll(c)
		if !strings.HasSuffix(string(out), "\r\n\r\n3\r\nok\n\r\n") {
			t.Errorf("broken chunked body relayed as %q, want it cut after the good chunk", out)
		}
	})
}

// A worker that wrote outside a response's framing, or closed an idle
// connection, loses that connection only: every later answer is proven by
// its token, so its other connections are reused.
func TestWorkerThatWroteLateKeepsItsOtherConnections(t *testing.T) {
	for _, c := range []struct {
		name  string
		after func(net.Conn)
	}{
		{"bytes after the response", func(c net.Conn) { _, _ = io.WriteString(c, injected) }},
		{"connection closed after the response", func(c net.Conn) { c.Close() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			w := startFramingWorker(t, func(path, body string) (string, func(net.Conn)) {
				if path == "/first" {
					return plainAnswer("first\n"), func(conn net.Conn) { c.after(conn); close(done) }
				}
				return plainAnswer("for " + path + "\n"), nil
			})
			p := startProxy(t, Config{}, ServerConfig{}, w.addr())
			if resp, body := rawRoundTrip(t, p.addr, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 || body != "first\n" {
				t.Fatalf("GET /first = %d %q", resp.StatusCode, body)
			}
			<-done
			for _, path := range []string{"/a", "/b", "/c"} {
				resp, body := rawRoundTrip(t, p.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
				if resp.StatusCode != 200 || body != "for "+path+"\n" || resp.Header.Get("X-Injected") != "" {
					t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
				}
			}
			if n := w.accepted.Load(); n != 2 {
				t.Errorf("the worker accepted %d connections for 4 requests, want 2", n)
			}
		})
	}
}

// Issue "first late write": bytes a worker writes after a response ended
// can arrive after the proxy looked at the idle connection and sent the next
// request on it. They carry no token, so they are never delivered: the
// request goes again on another connection and gets its own answer. On the
// old transport the client got INJECTED.
func TestLateWriteAfterThePeekReachesNoClient(t *testing.T) {
	var once atomic.Bool
	w := startFramingWorker(t, func(path, _ string) (string, func(net.Conn)) {
		if path == "/second" && !once.Swap(true) {
			// Written just before this request's answer, as a timer of the
			// previous request firing late would: the proxy's look at
			// the connection came before it.
			return injected + strings.Replace(plainAnswer("for /second\n"), "\r\n", "\r\n"+tokenMark, 1), nil
		}
		return plainAnswer("for " + path + "\n"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, path := range []string{"/first", "/second", "/third"} {
		resp, body := rawRoundTrip(t, p.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 200 || body != "for "+path+"\n" || resp.Header.Get("X-Injected") != "" {
			t.Errorf("GET %s = %d %q, want its own answer", path, resp.StatusCode, body)
		}
		if got := resp.Header.Get(TokenHeader); got != "" {
			t.Errorf("GET %s: the client got the token field %q", path, got)
		}
	}
	if n := w.accepted.Load(); n != 2 {
		t.Errorf("the worker accepted %d connections, want 2: the one with the late bytes is closed", n)
	}
}

// A request that cannot be sent again (a POST with its body) gets 502 when
// the answer on its reused connection is not its own: never another's bytes.
func TestUnprovenAnswerToAPostIsNotDelivered(t *testing.T) {
	var once atomic.Bool
	w := startFramingWorker(t, func(path, _ string) (string, func(net.Conn)) {
		if path == "/post" && !once.Swap(true) {
			return injected + strings.Replace(plainAnswer("for /post\n"), "\r\n", "\r\n"+tokenMark, 1), nil
		}
		return plainAnswer("for " + path + "\n"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	if resp, body := rawRoundTrip(t, p.addr, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 || body != "for /first\n" {
		t.Fatalf("GET /first = %d %q", resp.StatusCode, body)
	}
	resp, body := rawRoundTrip(t, p.addr, "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	if resp.StatusCode != 502 || strings.Contains(body, "INJECTED") {
		t.Errorf("POST = %d %q, want 502 without the injected bytes", resp.StatusCode, body)
	}
}

// A worker that echoes no token (a runtime without percore's preload) gets
// a connection of its own for every request: its answers cannot be proven,
// so no connection of it is reused. The first answer on a connection is
// always its request's.
func TestWorkerWithoutTokensGetsAConnectionPerRequest(t *testing.T) {
	w := startSilentWorker(t, func(path, _ string) (string, func(net.Conn)) {
		return plainAnswer("for " + path + "\n"), func(c net.Conn) { _, _ = io.WriteString(c, injected) }
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, path := range []string{"/a", "/b", "/c", "/d"} {
		resp, body := rawRoundTrip(t, p.addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 200 || body != "for "+path+"\n" {
			t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
		}
	}
	if n := w.accepted.Load(); n != 4 {
		t.Errorf("the worker accepted %d connections for 4 requests, want 4", n)
	}
}

// An answer whose token is another request's is not delivered, even as the
// first answer on a connection, and a client cannot choose the token.
func TestAnswerWithAnotherTokenIsRefused(t *testing.T) {
	w := startSilentWorker(t, func(path, _ string) (string, func(net.Conn)) {
		return withToken(plainAnswer("forged\n"), "0123456789abcdef"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	resp, body := rawRoundTrip(t, p.addr, "GET /x HTTP/1.1\r\nHost: a\r\n"+TokenHeader+": 0123456789abcdef\r\n\r\n")
	if resp.StatusCode != 502 || strings.Contains(body, "forged") {
		t.Errorf("GET = %d %q, want 502", resp.StatusCode, body)
	}
}

// A GET whose reused connection the worker closes without an answer (as
// node's preload does when the app writes its answer to such a connection
// itself) goes again on a new connection of the same worker, where that
// answer is delivered: an answer that had begun reaches the client cut
// short, not as 502, even with no other worker to try.
func TestGetLostOnReusedConnectionGoesAgainOnANewOne(t *testing.T) {
	const cut = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
	headSeen := make(chan struct{}) // the client has the answer's head
	w := startRawServer(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for answered := false; ; answered = true {
			head, err := readHeadLines(br)
			if err != nil {
				return
			}
			var tok string
			for _, line := range strings.Split(head, "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, TokenHeader) {
					tok = strings.TrimSpace(v)
				}
			}
			if strings.Fields(head)[1] != "/cut" {
				if _, err := io.WriteString(c, withToken(plainAnswer("warm\n"), tok)); err != nil {
					return
				}
				continue
			}
			if !answered && strings.HasPrefix(head, "GET") {
				// The app's own bytes, without the token; the connection
				// is cut once the client has the head.
				_, _ = io.WriteString(c, cut)
				select {
				case <-headSeen:
				case <-time.After(10 * time.Second):
				}
			}
			return
		}
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	if resp, body := rawRoundTrip(t, p.addr, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 || body != "warm\n" {
		t.Fatalf("GET /warm = %d %q", resp.StatusCode, body)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /cut HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	close(headSeen)
	if err != nil {
		t.Fatalf("GET /cut: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello world" || err == nil {
		t.Errorf("GET /cut = %d %q (%v), want 200 and the two chunks the worker sent, cut short", resp.StatusCode, body, err)
	}
	if n := w.accepted.Load(); n != 2 {
		t.Errorf("worker accepted %d connections, want 2 (the reused one, then a new one)", n)
	}
	if resp, body := rawRoundTrip(t, p.addr, "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 200 || body != "warm\n" {
		t.Fatalf("GET /warm = %d %q", resp.StatusCode, body)
	}
	resp, _ = rawRoundTrip(t, p.addr, "POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	if resp.StatusCode != 502 || w.accepted.Load() != 3 {
		t.Errorf("POST /cut after its reused connection was lost = %d on %d connections, want 502 on 3: a POST is not sent again", resp.StatusCode, w.accepted.Load())
	}
}
