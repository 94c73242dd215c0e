package proxy

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A body of unknown length reaches an HTTP/1.0 client as it is, ended by
// the close of the connection: such a client cannot read the chunked
// coding. An HTTP/1.1 client still gets it chunked on a kept connection.
func TestHTTP10ClientGetsBodyEndedByClose(t *testing.T) {
	w := startFramingWorker(t, func(path, _ string) (string, func(net.Conn)) {
		switch path {
		case "/chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\na\r\naaaaaaaaaa\r\n",
				func(c net.Conn) {
					time.Sleep(20 * time.Millisecond) // the second piece comes later, as from a streaming app
					_, _ = io.WriteString(c, "2\r\nb\n\r\n0\r\nX-T: 1\r\n\r\n")
				}
		case "/close":
			return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\naaaaaaaaaab\n", func(c net.Conn) { c.Close() }
		}
		return plainAnswer("aaaaaaaaaab\n"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, c := range []struct {
		name, raw string
		chunked   bool
	}{
		{"chunked to 1.0", "GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n", false},
		{"chunked to 1.0 keep-alive", "GET /chunked HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", false},
		{"close-delimited to 1.0", "GET /close HTTP/1.0\r\n\r\n", false},
		{"Content-Length to 1.0", "GET /length HTTP/1.0\r\n\r\n", false},
		{"chunked to 1.1", "GET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, c.raw); err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(conn) // to the close, which must come
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, out)
			}
			head, body, ok := strings.Cut(string(out), "\r\n\r\n")
			if !ok || !strings.HasPrefix(head, "HTTP/1.1 200 ") {
				t.Fatalf("answer %q", out)
			}
			te := strings.Contains(strings.ToLower(head), "transfer-encoding")
			if te != c.chunked {
				t.Errorf("Transfer-Encoding in the head: %v, want %v: %q", te, c.chunked, head)
			}
			if !c.chunked && !strings.Contains(head, "\r\nConnection: close") {
				t.Errorf("no Connection: close in the head: %q", head)
			}
			want := "aaaaaaaaaab\n"
			if c.chunked {
				want = "a\r\naaaaaaaaaa\r\n2\r\nb\n\r\n0\r\nX-T: 1\r\n\r\n"
			}
			if body != want {
				t.Errorf("body %q, want %q", body, want)
			}
		})
	}
	// Every request ended its in-flight count: the worker drains.
	select {
	case <-p.pool.Drain(1):
	case <-time.After(5 * time.Second):
		t.Error("the worker still has requests in flight")
	}
}
