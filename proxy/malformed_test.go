package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A request the proxy or the worker finds malformed ends the client's
// connection after its 400, as the worker served directly would: what
// follows on that connection cannot be trusted. A worker's ordinary 400
// leaves the connection open.
func TestMalformedRequestClosesTheConnection(t *testing.T) {
	w := startFramingWorker(t, func(path, _ string) (string, func(net.Conn)) {
		switch path {
		case "/unreadable":
			// What Node's parser answers an unknown or lower-case method.
			return "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
				func(c net.Conn) { c.Close() }
		case "/invalid":
			return "HTTP/1.1 400 Bad Request\r\nContent-Length: 8\r\n\r\ninvalid\n", nil
		}
		return plainAnswer("for " + path + "\n"), nil
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, c := range []struct {
		name, raw string
		closes    bool
	}{
		{"worker could not read it", "BREW /unreadable HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"space in a header name", "GET /a HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", true},
		{"worker's own 400", "GET /invalid HTTP/1.1\r\nHost: a\r\n\r\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			if _, err := io.WriteString(conn, c.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			// The next request gets its answer on a connection left open, and
			// the end of the connection on one that closes.
			_, _ = io.WriteString(conn, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			next, err := http.ReadResponse(br, nil)
			closed := err != nil
			if !closed {
				next.Body.Close()
			}
			if closed != c.closes {
				t.Errorf("connection closed after the 400: %v, want %v (next request: %v)", closed, c.closes, err)
			}
			if resp.Close != c.closes {
				t.Errorf("Connection: close on the 400: %v, want %v", resp.Close, c.closes)
			}
		})
	}
}
