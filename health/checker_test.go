package health

import (
	"bufio"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type fakeFleet struct {
	mu      sync.Mutex
	targets []Target
	fails   map[uint64]int
	ejected map[uint64]string
}

func (f *fakeFleet) HealthTargets() []Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Target(nil), f.targets...)
}

func (f *fakeFleet) SetHealthFailures(key uint64, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[key] = n
}

func (f *fakeFleet) Eject(key uint64, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ejected[key] = reason
}

// server answers each request with status, closes the connection when
// status is "close", or never answers when status is empty
// (an event loop that is blocked: the kernel still accepts the connection).
func server(t *testing.T, status string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				if status == "close" {
					return // the runtime read the probe and refused it
				}
				if status == "" || line == "" {
					time.Sleep(2 * time.Second)
					return
				}
				c.Write([]byte("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\n\r\n"))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCheckerEjectsAfterThreshold(t *testing.T) {
	f := &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}
	f.targets = []Target{
		{Key: 1, Slot: 0, Addr: server(t, "200 OK")},
		{Key: 2, Slot: 1, Addr: server(t, "")},              // blocked
		{Key: 3, Slot: 2, Addr: server(t, "404 Not Found")}, // any answer passes OPTIONS *
	}
	c := NewChecker(CheckConfig{Interval: time.Hour, Timeout: 200 * time.Millisecond, Threshold: 3}, f, hclog.NewNullLogger())
	for i := 1; i <= 3; i++ {
		c.round()
		if f.fails[2] != i || f.fails[1] != 0 || f.fails[3] != 0 {
			t.Fatalf("round %d: failures %v", i, f.fails)
		}
	}
	if f.ejected[2] != "health check" || len(f.ejected) != 1 {
		t.Errorf("ejected %v, want only the blocked worker", f.ejected)
	}
}

// A worker that closes the connection once the probe arrived ran its event
// loop to do so: Bun's node:http refuses "OPTIONS *" and an app's
// clientError handler destroys the socket. It passes the default check,
// not a check of a path the app must answer.
func TestCheckerCloseAfterProbe(t *testing.T) {
	for _, c := range []struct {
		path     string
		wantEjct bool
	}{{"", false}, {"/health", true}} {
		f := &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}
		f.targets = []Target{{Key: 1, Addr: server(t, "close")}}
		ch := NewChecker(CheckConfig{Path: c.path, Timeout: time.Second, Threshold: 1}, f, hclog.NewNullLogger())
		ch.round()
		if got := f.ejected[1] != ""; got != c.wantEjct {
			t.Errorf("path %q: ejected %v, want %v", c.path, got, c.wantEjct)
		}
	}
}

func TestCheckerWithPath(t *testing.T) {
	f := &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}
	f.targets = []Target{{Key: 1, Addr: server(t, "503 Service Unavailable")}, {Key: 2, Addr: server(t, "204 No Content")}}
	c := NewChecker(CheckConfig{Path: "/health", Timeout: time.Second, Threshold: 1}, f, hclog.NewNullLogger())
	c.round()
	if f.ejected[1] == "" || f.ejected[2] != "" {
		t.Errorf("ejected %v, want worker 1 only", f.ejected)
	}
}

func TestCheckerRunStops(t *testing.T) {
	c := NewChecker(CheckConfig{Interval: 10 * time.Millisecond}, &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() { done <- c.Run() }()
	time.Sleep(50 * time.Millisecond)
	c.Stop()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestStatusCode(t *testing.T) {
	for line, want := range map[string]int{"HTTP/1.1 200 OK\r\n": 200, "HTTP/1.0 503 x": 503, "SSH-2.0": 0, "HTTP/1.1 abc": 0} {
		got, err := statusCode(line)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("statusCode(%q) = %d, %v", line, got, err)
		}
	}
}

// pinger listens like a worker's ping listener and answers each line with
// answer, or never when answer is empty (an event loop that is blocked: the
// kernel still accepts the connection). It counts the connections.
type pinger struct {
	addr  string
	conns atomic.Int64
}

func newPinger(t *testing.T, network, answer string) *pinger {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "ping.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &pinger{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				if answer == "" || line != "ping\n" {
					time.Sleep(time.Second)
					return
				}
				c.Write([]byte(answer))
			}()
		}
	}()
	return p
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A worker with a ping listener is checked there, whatever its port does;
// one whose ping address has no listener is checked with OPTIONS *, where
// any answer passes.
func TestCheckerPings(t *testing.T) {
	f := &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}
	pong := newPinger(t, "tcp", "pong\n")
	unixPong := newPinger(t, "unix", "pong\n")
	f.targets = []Target{
		{Key: 1, Addr: server(t, ""), Ping: pong.addr},                                // the app's port would not answer
		{Key: 2, Addr: server(t, "200 OK"), Ping: newPinger(t, "tcp", "").addr},       // the loop is blocked
		{Key: 3, Addr: server(t, "200 OK"), Ping: newPinger(t, "tcp", "nope\n").addr}, // not a ping listener
		{Key: 4, Addr: raw(t, "SSH-2.0-x\r\n"), Ping: closedAddr(t)},                  // no preload: OPTIONS *
		{Key: 5, Addr: server(t, ""), Ping: filepath.Join(t.TempDir(), "none.sock")},  // no preload, blocked
		{Key: 6, Addr: server(t, ""), Ping: unixPong.addr},
	}
	c := NewChecker(CheckConfig{Interval: time.Hour, Timeout: 300 * time.Millisecond, Threshold: 1}, f, hclog.NewNullLogger())
	c.round()
	want := map[uint64]bool{2: true, 3: true, 5: true}
	for key := uint64(1); key <= 6; key++ {
		if got := f.ejected[key] != ""; got != want[key] {
			t.Errorf("worker %d: ejected %v, want %v", key, got, want[key])
		}
	}
	got := c.Counts()
	if got[CheckPing].Passed != 2 || got[CheckPing].Failed != 2 || got[CheckOptions].Passed != 1 ||
		got[CheckOptions].Failed != 1 || got[CheckGet].Passed+got[CheckGet].Failed != 0 {
		t.Errorf("counts %+v, want ping 2 passed 2 failed, options 1 passed 1 failed", got)
	}
}

// --health-path asks for an HTTP check: the ping listener is left alone.
func TestCheckerWithPathDoesNotPing(t *testing.T) {
	f := &fakeFleet{fails: map[uint64]int{}, ejected: map[uint64]string{}}
	pong := newPinger(t, "tcp", "pong\n")
	f.targets = []Target{{Key: 1, Addr: server(t, "503 Service Unavailable"), Ping: pong.addr}}
	c := NewChecker(CheckConfig{Path: "/health", Timeout: time.Second, Threshold: 1}, f, hclog.NewNullLogger())
	c.round()
	if f.ejected[1] == "" || pong.conns.Load() != 0 {
		t.Errorf("ejected %v, ping connections %d: want the GET's 503 to eject, no ping", f.ejected, pong.conns.Load())
	}
	if got := c.Counts()[CheckGet]; got.Failed != 1 {
		t.Errorf("get counts %+v, want 1 failed", got)
	}
}

// raw listens and writes answer to each connection once it sent a line:
// a server of another protocol than HTTP/1.
func raw(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(answer))
				time.Sleep(time.Second)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCheckKindString(t *testing.T) {
	for k, want := range map[CheckKind]string{CheckPing: "ping", CheckOptions: "options", CheckGet: "get", 7: "CheckKind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}
