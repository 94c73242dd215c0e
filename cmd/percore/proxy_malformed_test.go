package main

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// malformed are requests the proxy must refuse without a worker seeing them.
var malformed = []struct {
	name      string
	raw       string
	status    int  // 0: the connection may also just close
	halfClose bool // end the client's side after raw
}{
	{"garbage (a TLS hello)", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, false},
	{"invalid method", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	{"HTTP/0.9 request line", "GET /\r\n\r\n", 400, false},
	{"space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	{"unknown HTTP version", "GET / HTTP/1.7\r\nHost: x\r\n\r\n", 505, false},
	{"CONNECT", "CONNECT internal.test:443 HTTP/1.1\r\nHost: internal.test:443\r\n\r\n", 405, false},
	{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, false},
	{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, false},
	{"Content-Length and Transfer-Encoding",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"Transfer-Encoding and Content-Length",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"two Content-Length values",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, false},
	{"two equal Content-Length headers",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, false},
	{"Content-Length list", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400, false},
	{"signed Content-Length", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400, false},
	{"two Transfer-Encoding headers",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"Transfer-Encoding gzip, chunked",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"Transfer-Encoding identity", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", 400, false},
	{"Transfer-Encoding in HTTP/1.0",
		"POST /upload HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"space before the colon",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, false},
	{"obs-fold of Transfer-Encoding",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"bare LF ending a header line", "GET / HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n", 400, false},
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: x\nX-A: a\n\n", 400, false},
	{"bare LF everywhere, half-closed", "GET / HTTP/1.1\nHost: x\nX-A: a\n\n", 400, true},
	{"bare CR", "GET / HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n", 400, false},
	{"NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, false},
	{"control byte in a header name", "GET / HTTP/1.1\r\nHost: x\r\nX\x01A: a\r\n\r\n", 400, false},
	{"bad chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, false},
	{"negative chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, false},
	{"chunk size overflow",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400, false},
	{"chunk size line ending in bare LF", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400, false},
	{"overlong request line", "GET /" + strings.Repeat("a", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, false},
	{"overlong header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, false},
	{"too many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 0123456789\r\n", 2000) + "\r\n", 431, false},
}

func TestProxyRefusesMalformedRequests(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", proxyAppJS())
	before := stats(t, in)
	for _, c := range malformed {
		t.Run(c.name, func(t *testing.T) {
			out := rawExchangeClose(t, in.addr, c.raw, c.halfClose, 5*time.Second)
			got := statusOf(out)
			if got != c.status && !(c.status == 0 && out == "") {
				t.Errorf("status %d (%.60q), want %d and the connection closed", got, out, c.status)
			}
			if n := strings.Count(out, "HTTP/1.1 "); n > 1 {
				t.Errorf("%d responses to one malformed request: %q", n, out)
			}
			if out := rawExchange(t, in.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second); statusOf(out) != 200 {
				t.Errorf("a normal request after it got %.60q", out)
			}
		})
	}
	after := stats(t, in)
	wantRequests := before.Requests + len(malformed) // the normal request after each case
	if after.Requests != wantRequests || after.ClientErrors != before.ClientErrors {
		t.Errorf("the worker saw %d requests and %d unparsable ones; want %d and %d: a malformed request got through",
			after.Requests, after.ClientErrors, wantRequests, before.ClientErrors)
	}
}

func TestProxyHeaderTimeoutCutsSlowloris(t *testing.T) {
	needNode(t)
	const limit = time.Second
	in := start(t, "--workers", "1", "--header-timeout", limit.String(), "--", "node", proxyAppJS())

	t.Run("dribbled header", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		began := time.Now()
		closed := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(c)
			closed <- string(b)
		}()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		var out string
	dribble:
		for i := 0; i < 50; i++ {
			select {
			case out = <-closed:
				break dribble
			case <-time.After(150 * time.Millisecond):
				_, _ = io.WriteString(c, "X-Slow: a\r\n")
			}
		}
		took := time.Since(began)
		if took < limit-200*time.Millisecond || took > limit+1500*time.Millisecond {
			t.Errorf("connection closed after %s, want at the %s header timeout", took, limit)
		}
		if out != "" && statusOf(out) != 408 {
			t.Errorf("answer %q, want 408 or none", out)
		}
	})

	t.Run("silent connection", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		began := time.Now()
		_, _ = io.ReadAll(c)
		if took := time.Since(began); took > limit+1500*time.Millisecond {
			t.Errorf("a connection that sent nothing stayed open %s", took)
		}
	})

	t.Run("slow body is not cut", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		const body = "0123456789"
		_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
		for i := 0; i < len(body); i++ {
			time.Sleep(limit / 4) // the body takes 2.5 header timeouts
			if _, err := io.WriteString(c, body[i:i+1]); err != nil {
				t.Fatalf("byte %d of the body: %v", i, err)
			}
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("slow body answered %q, %v", line, err)
		}
	})
}
