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

// TestAdmissionEvictsTheCrowd: past MaxConns a new connection is served,
// and the connection closed to make room is the oldest of the peer holding
// the most; a probe's idle connection from another address stays open.
func TestAdmissionEvictsTheCrowd(t *testing.T) {
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
	// The probe's keep-alive connection comes first: the oldest of all.
	mine := probeFrom(t, "127.0.0.1", addr, 200)
	held = append(held, mine)
	// Then a crowd from another address: its first MaxConns-1 fill the
	// listener, and each one past them evicts the crowd's oldest.
	var crowd []net.Conn
	for range 2 * MaxConns {
		c := probeFrom(t, "127.0.0.2", addr, 200)
		held = append(held, c)
		crowd = append(crowd, c)
	}
	evicted := len(crowd) - (MaxConns - 1)
	for i, c := range crowd[:evicted] {
		if code, err := again(c); err == nil {
			t.Fatalf("crowd connection %d still answered (%d), want it closed", i, code)
		}
	}
	for i, c := range crowd[evicted:] {
		if code, err := again(c); err != nil || code != 200 {
			t.Fatalf("crowd connection %d of the newest: %d %v, want 200", evicted+i, code, err)
		}
	}
	if code, err := again(mine); err != nil || code != 200 {
		t.Fatalf("the probe's connection: %d %v, want 200 (evicted for a crowd from another address)", code, err)
	}
}

// probeFrom sends GET /healthz from the local address from on a new
// keep-alive connection and checks the status.
func probeFrom(t *testing.T, from, addr string, want int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := again(c); err != nil || code != want {
		t.Fatalf("GET /healthz from %s = %d %v, want %d", from, code, err, want)
	}
	return c
}

// again sends GET /healthz on c and returns the status.
func again(c net.Conn) (int, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
