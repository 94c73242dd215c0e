package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// upgradeWorker is a worker that answers upgrade requests as answer says
// and, after a 101, echoes what it reads; when its client side ends it
// writes "<eof>" and closes.
type upgradeWorker struct {
	*rawServer
	answer func(head string) string
	heads  chan string // request heads received
}

func startUpgradeWorker(t *testing.T, answer func(head string) string) *upgradeWorker {
	t.Helper()
	w := &upgradeWorker{answer: answer, heads: make(chan string, 16)}
	w.rawServer = startRawServer(t, w.serve)
	return w
}

func (w *upgradeWorker) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	head, err := readHeadLines(br)
	if err != nil {
		return
	}
	w.heads <- head
	answer := w.answer(head)
	if answer == "" {
		_, _ = io.Copy(io.Discard, br) // never answers
		return
	}
	if _, err := io.WriteString(c, answer); err != nil || !strings.HasPrefix(answer, "HTTP/1.1 101") {
		return
	}
	if _, err := io.Copy(c, br); err != nil {
		return
	}
	_, _ = io.WriteString(c, "<eof>")
}

func switching(proto string) func(string) string {
	return func(string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + proto + "\r\nConnection: Upgrade\r\n\r\n"
	}
}

const wsRequest = "GET /chat HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dialTunnel sends req (and extra bytes) and reads the response head.
func dialTunnel(t *testing.T, addr, req string) (*net.TCPConn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	head, err := readHeadLines(br)
	if err != nil {
		t.Fatalf("response head: %q, %v", head, err)
	}
	return c.(*net.TCPConn), br, head
}

func TestUpgradeTunnelCarriesBytesAndHalfCloses(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())

	c, br, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 101 Switching Protocols\r\n") || !strings.Contains(head, "Upgrade: websocket") {
		t.Fatalf("head = %q", head)
	}
	got := <-w.heads
	for _, want := range []string{"GET /chat HTTP/1.1\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
		"Sec-Websocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "X-Forwarded-For: 127.0.0.1\r\n", "X-Request-Id: "} {
		if !strings.Contains(got, want) {
			t.Errorf("the worker's request lacks %q:\n%s", want, got)
		}
	}
	if p.h.Tunnels() != 1 {
		t.Errorf("Tunnels = %d, want 1", p.h.Tunnels())
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10)} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		echo := make([]byte, len(msg))
		if _, err := io.ReadFull(br, echo); err != nil || string(echo) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(echo), err)
		}
	}
	// The client's half-close reaches the worker, whose answer still comes back.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "<eof>" {
		t.Fatalf("after the half-close: %q, %v; want the worker's \"<eof>\" then EOF", rest, err)
	}
	waitFor(t, 2*time.Second, "the tunnel to end", func() bool { return p.h.Tunnels() == 0 })
	if n := p.pool.backends.Load(); (*n)[0].inflight.Load() != 0 {
		t.Errorf("in flight after the tunnel ended: %d", (*n)[0].inflight.Load())
	}
}

func TestUpgradeEarlyBytesBothWays(t *testing.T) {
	w := startUpgradeWorker(t, func(string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst-from-worker"
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	// The client's first bytes come in the same packet as its handshake.
	_, br, head := dialTunnel(t, p.addr, wsRequest+"first-from-client")
	if !strings.HasPrefix(head, "HTTP/1.1 101") {
		t.Fatalf("head = %q", head)
	}
	got := make([]byte, len("first-from-worker")+len("first-from-client"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "first-from-workerfirst-from-client" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestUpgradeWithConnectionClose(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	for _, conn := range []string{"Connection: Upgrade, close\r\n", "Connection: close, Upgrade\r\n",
		"Connection: Upgrade\r\nConnection: close\r\n"} {
		req := strings.Replace(wsRequest, "Connection: Upgrade\r\n", conn, 1)
		c, br, head := dialTunnel(t, p.addr, req)
		if !strings.HasPrefix(head, "HTTP/1.1 101") {
			t.Fatalf("with %q: head %q", conn, head)
		}
		if _, err := io.WriteString(c, "ping"); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
			t.Fatalf("with %q: echo %q, %v", conn, got, err)
		}
	}
}

func TestUpgradeRefusalIsRelayed(t *testing.T) {
	w := startUpgradeWorker(t, func(string) string {
		return "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	c, br, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 426 Upgrade Required\r\n") || strings.Contains(head, "Connection: close") {
		t.Fatalf("refusal head %q, want 426 with the client's connection kept", head)
	}
	body := make([]byte, 4)
	if _, err := io.ReadFull(br, body); err != nil || string(body) != "nope" {
		t.Fatalf("refusal body %q, %v", body, err)
	}
	if p.h.Tunnels() != 0 {
		t.Error("a refused upgrade left a tunnel")
	}
	// The connection stays an HTTP connection.
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if head, err := readHeadLines(br); err != nil || !strings.HasPrefix(head, "HTTP/1.1 426 ") {
		t.Fatalf("second request on the connection: %q, %v", head, err)
	}
	waitFor(t, time.Second, "the handshake's in-flight count", func() bool {
		return (*p.pool.backends.Load())[0].inflight.Load() == 0
	})
}

func TestUpgradeToAnotherProtocolIsRefused(t *testing.T) {
	for _, answer := range []string{"h2c", "websocket, h2c", ""} {
		w := startUpgradeWorker(t, switching(answer))
		p := startProxy(t, Config{}, ServerConfig{}, w.addr())
		_, _, head := dialTunnel(t, p.addr, wsRequest)
		if !strings.HasPrefix(head, "HTTP/1.1 502 ") {
			t.Errorf("101 with Upgrade %q to a websocket request: %q, want 502", answer, head)
		}
	}
}

func TestUpgradeSkipsInterimResponses(t *testing.T) {
	w := startUpgradeWorker(t, func(string) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	})
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	_, _, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("head %q, want the 101", head)
	}
}

func TestUpgradeResponseTimeout(t *testing.T) {
	w := startUpgradeWorker(t, func(string) string { return "" })
	p := startProxy(t, Config{ResponseTimeout: 200 * time.Millisecond}, ServerConfig{}, w.addr())
	began := time.Now()
	_, _, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 504 ") {
		t.Fatalf("head %q, want 504", head)
	}
	if d := time.Since(began); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("504 after %s, want after the 200ms response timeout", d)
	}
}

func TestUpgradeWithBodyIsAPlainRequest(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	p := startProxy(t, Config{}, ServerConfig{}, srv.Listener.Addr().String())
	resp, _ := rawRoundTrip(t, p.addr, "POST /x HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 3\r\n\r\nabc")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := rec.all()[0]
	if r.header.Get("Upgrade") != "" || r.body != "abc" {
		t.Errorf("worker got Upgrade %q body %q; want a plain request", r.header.Get("Upgrade"), r.body)
	}
}

func TestTunnelHoldsDrainAndNotASlot(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{MaxInFlight: 1, Queue: -1}, ServerConfig{}, w.addr())
	c, br, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 101") {
		t.Fatalf("head %q", head)
	}
	b := (*p.pool.backends.Load())[0]
	waitFor(t, time.Second, "the handshake's slot back", func() bool { return b.busy.Load() == 0 })
	if b.inflight.Load() != 1 {
		t.Errorf("in flight with a tunnel open: %d, want 1", b.inflight.Load())
	}
	drained := p.pool.Drain(1)
	select {
	case <-drained:
		t.Fatal("drained while a tunnel is open")
	case <-time.After(100 * time.Millisecond):
	}
	c.CloseWrite()
	io.ReadAll(br)
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		t.Fatal("not drained after the tunnel ended")
	}
}

func TestStopLetsTunnelsGoThenClosesThem(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	c, br, _ := dialTunnel(t, p.addr, wsRequest)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	drained := p.pool.Drain(1)

	const budget = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	p.serve.Stop(ctx)
	if d := time.Since(began); d > budget/2 {
		t.Errorf("Stop took %s with only a tunnel open, want it to return once requests are done", d)
	}
	select {
	case <-drained:
	case <-time.After(time.Second):
		t.Fatal("a stopping proxy's tunnel still holds the worker's drain")
	}
	// The tunnel works during the stop...
	if _, err := io.WriteString(c, "still"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("echo during the stop: %v", err)
	}
	// ...and is closed at the deadline; Run returns after it.
	_, err := br.ReadByte()
	if d := time.Since(began); err == nil || d < budget-100*time.Millisecond || d > budget+time.Second {
		t.Errorf("tunnel ended after %s (%v), want at the %s deadline", d, err, budget)
	}
	select {
	case err := <-p.ran:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after the tunnels closed")
	}
	p.once.Do(func() {})
}

func TestCloseTunnels(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	_, br1, _ := dialTunnel(t, p.addr, wsRequest)
	_, br2, _ := dialTunnel(t, p.addr, wsRequest)
	waitFor(t, time.Second, "two tunnels", func() bool { return p.h.Tunnels() == 2 })
	p.h.CloseTunnels()
	for _, br := range []*bufio.Reader{br1, br2} {
		if _, err := br.ReadByte(); err == nil {
			t.Error("tunnel still open after CloseTunnels")
		}
	}
	waitFor(t, time.Second, "no tunnels", func() bool { return p.h.Tunnels() == 0 })
	waitFor(t, time.Second, "in flight back to 0", func() bool { return (*p.pool.backends.Load())[0].inflight.Load() == 0 })
}

func TestOffered(t *testing.T) {
	cases := []struct {
		asked, chosen string
		want          bool
	}{
		{"websocket", "websocket", true},
		{"websocket", "WebSocket", true},
		{"h2c, websocket", "websocket", true},
		{"websocket", "h2c", false},
		{"websocket", "websocket, h2c", false},
		{"websocket", "", false},
		{"websocket", " , ", false},
	}
	for _, c := range cases {
		if got := offered([]byte(c.asked), []byte(c.chosen)); got != c.want {
			t.Errorf("offered(%q, %q) = %v, want %v", c.asked, c.chosen, got, c.want)
		}
	}
}

func TestUpgradeProtocolDetection(t *testing.T) {
	cases := []struct {
		raw  string
		want string
	}{
		{wsRequest, "websocket"},
		{"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", ""},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", ""},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: foo/2, bar\r\n\r\n", "foo/2, bar"},
		{"GET / HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ""},
		{"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\nx", ""},
	}
	for _, c := range cases {
		req := parseTestRequest(t, c.raw)
		if got := string(upgradeProtocol(&req.Header, nil)); got != c.want {
			t.Errorf("upgradeProtocol(%.50q) = %q, want %q", c.raw, got, c.want)
		}
	}
}

// TestUpgradeWaitsForTheReplacementOfADeadWorker sends a handshake to the
// only worker, whose port refuses connections (it died; the supervisor has
// not seen it yet): nothing was sent, so the handshake waits for the
// replacement instead of answering 503.
func TestUpgradeWaitsForTheReplacementOfADeadWorker(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := dead.Addr().String()
	dead.Close()
	next := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{WorkerWait: 5 * time.Second}, ServerConfig{}, gone)
	added := make(chan struct{})
	go func() {
		defer close(added)
		for end := time.Now().Add(5 * time.Second); p.pool.Ready() != 0 && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond) // until the handshake found the worker down
		}
		time.Sleep(300 * time.Millisecond) // the supervisor's delay, not a wait for an event
		p.pool.Drain(1)
		p.pool.Add(2, 0, next.addr())
	}()
	t.Cleanup(func() { <-added })
	_, _, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 101") {
		t.Errorf("handshake whose worker died: %q, want the replacement's 101", head)
	}
}
