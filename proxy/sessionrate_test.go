package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSessionRateCapsEachAddress drives the cap with an injected clock: an
// address gets its burst at once, then one session per interval; another
// address is not affected; a quiet address gets its whole burst back.
func TestSessionRateCapsEachAddress(t *testing.T) {
	r := newSessionRate(10, 20, 64) // one every 100ms, 20 at once
	t0 := time.Now()
	take := func(key uint64, at time.Time) int {
		n := 0
		for ; n < 100; n++ {
			if _, ok := r.allow(key, at); !ok {
				break
			}
		}
		return n
	}
	if n := take(1, t0); n != 20 {
		t.Fatalf("address 1 opened %d sessions at once, want its burst of 20", n)
	}
	if wait, ok := r.allow(1, t0); ok || wait != 100*time.Millisecond {
		t.Errorf("over the cap: allow = %v, %v; want refused, retry after 100ms", wait, ok)
	}
	if n := take(2, t0); n != 20 {
		t.Errorf("address 2 opened %d sessions, want 20: another address's use is not its own", n)
	}
	if n := take(1, t0.Add(350*time.Millisecond)); n != 3 {
		t.Errorf("350ms later address 1 opened %d sessions, want 3", n)
	}
	if n := take(1, t0.Add(10*time.Second)); n != 20 {
		t.Errorf("after a quiet spell address 1 opened %d sessions, want its burst of 20", n)
	}
}

// TestSessionRateForgetsBoundedly checks that the addresses remembered
// stay within the table's bound, and that an address whose bucket is full
// again is forgotten as new ones come.
func TestSessionRateForgetsBoundedly(t *testing.T) {
	r := newSessionRate(10, 20, 64)
	t0 := time.Now()
	for k := range uint64(10000) {
		r.allow(k*0x9e3779b97f4a7c15, t0) // spread over the shards and the index
	}
	if n := r.count(); n != 64 {
		t.Errorf("%d addresses remembered, want the bound, 64", n)
	}
	for k := range uint64(200) {
		r.allow(k*0x9e3779b97f4a7c15+1, t0.Add(time.Minute))
	}
	if n := r.count(); n > 64 {
		t.Errorf("%d addresses remembered, bound is 64", n)
	}
}

func TestSessionRateClientKey(t *testing.T) {
	r := newSessionRate(10, 20, 64)
	key := func(peer, xff string) uint64 {
		t.Helper()
		req := parseTestRequest(t, "GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: "+xff+"\r\n\r\n")
		k, capped := r.clientKey(&req.Header, net.TCPAddrFromAddrPort(mustAddrPort(t, peer)), DefaultTrusted())
		if !capped {
			t.Fatalf("client of peer %s, X-Forwarded-For %q not capped", peer, xff)
		}
		return k
	}
	same := [][2]uint64{
		{key("203.0.113.7:1000", ""), key("203.0.113.7:2000", "")},
		{key("203.0.113.7:1000", ""), key("[::ffff:203.0.113.7]:1000", "")},
		{key("[2001:db8:0:1::1]:1000", ""), key("[2001:db8:0:1:ffff::9]:1000", "")}, // one /64
		{key("198.51.100.4:1000", ""), key("127.0.0.1:1000", "198.51.100.4")},       // through a trusted proxy
		{key("198.51.100.4:1000", "192.0.2.1"), key("198.51.100.4:1000", "")},       // an untrusted peer's header is ignored
	}
	for i, p := range same {
		if p[0] != p[1] {
			t.Errorf("pair %d: keys differ, want one address", i)
		}
	}
	differ := [][2]uint64{
		{key("203.0.113.7:1000", ""), key("203.0.113.8:1000", "")},
		{key("[2001:db8:0:1::1]:1000", ""), key("[2001:db8:0:2::1]:1000", "")},
		{key("127.0.0.1:1000", "198.51.100.4"), key("127.0.0.1:1000", "198.51.100.5")},
	}
	for i, p := range differ {
		if p[0] == p[1] {
			t.Errorf("pair %d: one key, want two addresses", i)
		}
	}
	for _, peer := range []string{"127.0.0.1:1000", "127.0.0.2:1000", "[::1]:1000"} {
		req := parseTestRequest(t, "GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, capped := r.clientKey(&req.Header, net.TCPAddrFromAddrPort(mustAddrPort(t, peer)), Trusted{}); capped {
			t.Errorf("loopback client %s capped", peer)
		}
	}
}

// TestSessionRateRefusesHandshakes sends handshakes through the proxy for
// one client, behind a trusted proxy (loopback) that names it in
// X-Forwarded-For, until one is refused: 429 with Retry-After, and no
// worker saw it. Polls of a session are not capped, another client still
// opens sessions, and so does the loopback itself.
func TestSessionRateRefusesHandshakes(t *testing.T) {
	const burst = 5
	p := startProxy(t, Config{SessionRate: 1, SessionBurst: burst}, ServerConfig{}, engineWorker(t, "A", false))
	url := "http://" + p.addr + "/socket.io/?EIO=4&transport=polling"
	from := func(client string) *http.Client {
		return &http.Client{Transport: forwardedFor(client)}
	}
	c := from("198.51.100.7")
	start := time.Now()
	opened, sid := 0, ""
	var refused *http.Response
	for range 50 {
		resp, body := getResp(t, c, url)
		if resp.StatusCode == http.StatusTooManyRequests {
			refused = resp
			if !strings.Contains(body, "too many new socket.io sessions") {
				t.Errorf("429 body %q", body)
			}
			break
		}
		s, _ := openPacketSID([]byte(body))
		if resp.StatusCode != http.StatusOK || s == nil {
			t.Fatalf("handshake answered %d %q", resp.StatusCode, body)
		}
		opened, sid = opened+1, string(s)
	}
	elapsed := time.Since(start)
	if refused == nil {
		t.Fatalf("50 handshakes in %v from one client, none refused", elapsed)
	}
	if ra := refused.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1 (second)", ra)
	}
	// One more session a second may have come in meanwhile.
	if opened < burst || opened > burst+1+int(elapsed/time.Second) {
		t.Errorf("%d sessions opened in %v before the refusal, want the burst of %d", opened, elapsed, burst)
	}
	if st := p.pool.Sticky(); st.Sessions != opened || st.Refused != 1 {
		t.Errorf("sticky counts %+v: want %d sessions (the refused handshake not forwarded) and 1 refused", st, opened)
	}
	for range 10 {
		if got := get(t, c, url+"&sid="+sid); got != "ok A" {
			t.Fatalf("poll of session %s answered %q", sid, got)
		}
	}
	if resp, body := getResp(t, from("198.51.100.8"), url); resp.StatusCode != http.StatusOK {
		t.Errorf("handshake of another client answered %d %q", resp.StatusCode, body)
	}
	for range 2 * burst {
		if resp, body := getResp(t, &http.Client{}, url); resp.StatusCode != http.StatusOK {
			t.Fatalf("handshake from the loopback answered %d %q", resp.StatusCode, body)
		}
	}
	// A WebSocket handshake opens a session too: it is refused the same
	// way once the client is over its rate (which a slow moment between
	// the two may refill: then try again).
	ws := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	for try := 0; ; try++ {
		drainSessionRate(t, c, url)
		if resp, _ := rawRoundTrip(t, p.addr, ws); resp.StatusCode == http.StatusTooManyRequests {
			break
		} else if try == 5 {
			t.Fatalf("a WebSocket handshake over the cap answered %d", resp.StatusCode)
		}
	}
}

// drainSessionRate opens sessions with c until one is refused.
func drainSessionRate(t *testing.T, c *http.Client, url string) {
	t.Helper()
	for range 100 {
		if resp, _ := getResp(t, c, url); resp.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("100 handshakes, none refused")
}

// forwardedFor is a transport that says, as a proxy would, that it
// forwards for client.
type forwardedFor string

func (f forwardedFor) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(req)
}

// getResp gets url and returns the response and its body.
func getResp(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
