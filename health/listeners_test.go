package health

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeListeners struct{ reason atomic.Value }

func (f *fakeListeners) NotAccepting() string { s, _ := f.reason.Load().(string); return s }

// TestHealthzWhileNotAccepting: /healthz and /readyz say 503, with the
// reason, while a listener is out of descriptors; /livez stays 200.
func TestHealthzWhileNotAccepting(t *testing.T) {
	w := &fakeWorkers{}
	w.ready.Store(1)
	ls := &fakeListeners{}
	ls.reason.Store("")
	_, base := startServer(t, Config{Workers: w, Listeners: ls})
	for _, p := range []string{"/healthz", "/readyz", "/livez"} {
		if code, _ := get(t, base+p); code != 200 {
			t.Errorf("%s = %d while accepting, want 200", p, code)
		}
	}
	ls.reason.Store("public listener not accepting connections for 1s: too many open files")
	for _, p := range []string{"/healthz", "/readyz?verbose"} {
		code, body := get(t, base+p)
		if code != 503 || !strings.Contains(body, "too many open files") {
			t.Errorf("%s = %d %q while not accepting, want 503 with the reason", p, code, body)
		}
	}
	if code, _ := get(t, base+"/livez"); code != 200 {
		t.Errorf("/livez = %d while not accepting, want 200", code)
	}
	ls.reason.Store("")
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d after recovery, want 200", code)
	}
}

// TestAdminConnectionCap: connections past MaxConns are turned away, and
// once the crowd leaves a probe is answered again.
func TestAdminConnectionCap(t *testing.T) {
	w := &fakeWorkers{}
	w.ready.Store(1)
	_, base := startServer(t, Config{Workers: w})
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Keep-alive connections, each with one answered request: idle, open.
	for range MaxConns {
		c := probe(t, addr, 200)
		held = append(held, c)
	}
	// One more is refused at once with 503, not queued.
	probe(t, addr, 503).Close()
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, code := probeCode(t, addr)
		c.Close()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe after the crowd left: %d, want 200", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probe sends GET /healthz on a new keep-alive connection and checks the status.
func probe(t *testing.T, addr string, want int) net.Conn {
	t.Helper()
	c, code := probeCode(t, addr)
	if code != want {
		t.Fatalf("GET /healthz = %d, want %d", code, want)
	}
	return c
}

func probeCode(t *testing.T, addr string) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, resp.StatusCode
}
