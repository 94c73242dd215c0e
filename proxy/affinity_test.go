package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseAffinity(t *testing.T) {
	for in, want := range map[string]Affinity{
		"off": {}, "cookie": {Mode: AffinityCookie}, "ip": {Mode: AffinityIP},
		"header:X-Tenant": {Mode: AffinityHeader, Header: "X-Tenant"},
	} {
		got, err := ParseAffinity(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseAffinity(%q) = %+v, %v (String %q)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "on", "header:", "header:a b", "Cookie", "hash"} {
		if _, err := ParseAffinity(bad); err == nil {
			t.Errorf("ParseAffinity(%q) accepted", bad)
		}
	}
}

// hashPick picks a worker of p for a request keyed by key, and releases it.
func hashPick(p *Pool, key string) (*backend, pinOutcome) {
	var none triedSet
	r := route{hash: hashKey([]byte(key)), hashed: true}
	b, _ := p.pickFree(&none, &r)
	if b != nil {
		b.release()
	}
	return b, r.outcome
}

// TestRendezvousMovesFewKeysOnScaling scales from N to N+1 workers and back:
// about 1/(N+1) of the keys move when one is added, and removing it moves
// back only those.
func TestRendezvousMovesFewKeysOnScaling(t *testing.T) {
	const keys = 20000
	for _, n := range []int{2, 3, 4, 8} {
		p := NewPool(UpstreamConfig{})
		for k := range n {
			p.Add(uint64(k+1), k, "127.0.0.1:1")
		}
		before := make([]int, keys)
		load := make([]int, n)
		for i := range keys {
			b, o := hashPick(p, fmt.Sprint("client-", i))
			if o != pinFollowed {
				t.Fatalf("n=%d: key %d %v with every worker free", n, i, o)
			}
			before[i] = b.slot
			load[b.slot]++
		}
		for slot, l := range load {
			if want := keys / n; l < want*8/10 || l > want*12/10 {
				t.Errorf("n=%d: slot %d has %d keys, want about %d", n, slot, l, want)
			}
		}
		p.Add(uint64(n+1), n, "127.0.0.1:1")
		moved := 0
		for i := range keys {
			b, _ := hashPick(p, fmt.Sprint("client-", i))
			if b.slot != before[i] {
				moved++
				if b.slot != n {
					t.Fatalf("n=%d: key %d moved from slot %d to old slot %d", n, i, before[i], b.slot)
				}
			}
		}
		want := keys / (n + 1)
		if moved < want*8/10 || moved > want*12/10 {
			t.Errorf("scaling %d to %d moved %d of %d keys, want about %d", n, n+1, moved, keys, want)
		}
		p.Drain(uint64(n + 1))
		for i := range keys {
			if b, _ := hashPick(p, fmt.Sprint("client-", i)); b.slot != before[i] {
				t.Fatalf("n=%d: after scaling back, key %d is on slot %d, was %d", n, i, b.slot, before[i])
			}
		}
	}
}

func TestRendezvousMovesOffAFullOrEjectedWorker(t *testing.T) {
	p := newTestPool(0, 1, 2)
	home, _ := hashPick(p, "user-7")
	var none triedSet
	r := route{hash: hashKey([]byte("user-7")), hashed: true}
	home.ejectedUntil.Store(1 << 62)
	p.ejectedUntil.Store(1 << 62)
	b, _ := p.pickFree(&none, &r)
	if b == home || r.outcome != pinMoved {
		t.Fatalf("ejected home worker: went to %d (%v), home %d", b.key, r.outcome, home.key)
	}
	b.release()
	second := b
	for range 5 { // the second choice is stable
		if b, o := hashPick(p, "user-7"); b != second || o != pinMoved {
			t.Fatalf("moved key went to %d then %d", second.key, b.key)
		}
	}
	home.ejectedUntil.Store(0)
	if b, o := hashPick(p, "user-7"); b != home || o != pinFollowed {
		t.Errorf("home worker back: went to %d (%v), want %d", b.key, o, home.key)
	}
	if st := p.Sticky(); st.Followed < 2 || st.Moved != 6 {
		t.Errorf("sticky counts %+v, want 6 moved", st)
	}
}

func TestSlotCookie(t *testing.T) {
	for v, want := range map[string]int{"0": 0, "7": 7, "65535": 65535} {
		if got, ok := parseSlotCookie([]byte(v)); !ok || got != want {
			t.Errorf("parseSlotCookie(%q) = %d, %v", v, got, ok)
		}
	}
	for _, v := range []string{"", "-1", "01", "65536", "1e3", "999999", "x"} {
		if _, ok := parseSlotCookie([]byte(v)); ok {
			t.Errorf("parseSlotCookie(%q) accepted", v)
		}
	}
	if got := string(appendSlotCookie(nil, 3)); got != "percore_worker=3; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("cookie %q", got)
	}
}

func TestClientIPBehindTrustedProxies(t *testing.T) {
	trusted, err := ParseTrusted("private")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.9", "198.51.100.1", "203.0.113.9"},                   // untrusted peer: its own address
		{"10.0.0.2", "198.51.100.1, 10.0.0.3, 10.0.0.2", "198.51.100.1"}, // through two proxies
		{"10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.2", "198.51.100.1"},  // the client's own claim is ignored
		{"10.0.0.2", "10.0.0.5, 10.0.0.2", "10.0.0.5"},                   // all trusted: the leftmost
		{"10.0.0.2", "", "10.0.0.2"},
	} {
		req := parseTestRequest(t, "GET / HTTP/1.1\r\nHost: x\r\n"+
			func() string {
				if tc.xff == "" {
					return ""
				}
				return "X-Forwarded-For: " + tc.xff + "\r\n"
			}()+"\r\n")
		peer := &net.TCPAddr{IP: net.ParseIP(tc.peer), Port: 5}
		if got := string(clientIP(nil, &req.Header, peer, trusted)); got != tc.want {
			t.Errorf("peer %s, XFF %q: client %q, want %q", tc.peer, tc.xff, got, tc.want)
		}
	}
}

// TestCookieAffinityPinsAndMoves runs the proxy with --affinity cookie: a
// client without the cookie gets one naming its worker, a client with it
// stays there, and when that worker leaves the client moves once.
func TestCookieAffinityPinsAndMoves(t *testing.T) {
	w := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	p := startProxy(t, Config{Affinity: Affinity{Mode: AffinityCookie}}, ServerConfig{}, w("A"), w("B"), w("C"))
	c := &http.Client{}
	do := func(cookie string) (string, string) {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "other=1; "+cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Set-Cookie"), string(body)
	}
	set, first := do("")
	if !strings.HasPrefix(set, "percore_worker=") || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") {
		t.Fatalf("first answer's Set-Cookie %q", set)
	}
	cookie := strings.SplitN(set, ";", 2)[0]
	for range 10 {
		if again, got := do(cookie); got != first || again != "" {
			t.Fatalf("pinned request went to %s (Set-Cookie %q), want %s and no cookie", got, again, first)
		}
	}
	for _, forged := range []string{"percore_worker=9", "percore_worker=x", "percore_worker=" + strings.Repeat("1", 100)} {
		if set, _ := do(forged); !strings.HasPrefix(set, "percore_worker=") {
			t.Errorf("a request with %q got no fresh cookie", forged)
		}
	}
	slot := map[string]uint64{"A": 1, "B": 2, "C": 3}[first]
	p.pool.Drain(slot)
	set, moved := do(cookie)
	if moved == first || !strings.HasPrefix(set, "percore_worker=") {
		t.Fatalf("after its worker left: went to %s with Set-Cookie %q", moved, set)
	}
	newCookie := strings.SplitN(set, ";", 2)[0]
	for range 5 {
		if again, got := do(newCookie); got != moved || again != "" {
			t.Fatalf("moved client went to %s, want %s", got, moved)
		}
	}
	if st := p.pool.Sticky(); st.Affinity != "cookie" || st.Followed != 15 || st.Moved < 2 {
		t.Errorf("sticky counts %+v, want 15 followed and the moves", st)
	}
}
