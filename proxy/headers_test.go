package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestConnectionTokens(t *testing.T) {
	cases := map[string]string{
		"":                           "",
		"close":                      "close",
		"keep-alive, X-Foo":          "keep-alive|X-Foo",
		" ,, a ,\tb\t,":              "a|b",
		"Upgrade":                    "Upgrade",
		"X-A,X-B,X-C,X-D":            "X-A|X-B|X-C|X-D",
		"  spaced  ,  also spaced  ": "spaced|also spaced",
	}
	for in, want := range cases {
		if got := strings.Join(splitTokens(in), "|"); got != want {
			t.Errorf("tokens of %q = %q, want %q", in, got, want)
		}
	}
}

func TestRemoveHopByHopRequest(t *testing.T) {
	var req fasthttp.Request
	raw := "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nX-Keep: 1\r\n" +
		"Keep-Alive: 5\r\nProxy-Authorization: a\r\nTe: trailers\r\nUpgrade: h2c\r\nTrailer: X\r\n\r\n"
	if err := req.Read(bufioReader(raw)); err != nil {
		t.Fatal(err)
	}
	removeHopByHop(&req.Header)
	for _, h := range []string{"X-Drop", "Keep-Alive", "Proxy-Authorization", "Upgrade", "Trailer"} {
		if v := req.Header.Peek(h); len(v) > 0 {
			t.Errorf("%s = %q survived", h, v)
		}
	}
	if string(req.Header.Peek("X-Keep")) != "1" {
		t.Error("X-Keep was removed")
	}
	if string(req.Header.Peek("Te")) != "trailers" {
		t.Error(`"Te: trailers" must be kept`)
	}
}

func TestRemoveHopByHopResponse(t *testing.T) {
	var resp fasthttp.Response
	resp.Header.Set("Connection", "X-Internal")
	resp.Header.Set("X-Internal", "secret")
	resp.Header.Set("Keep-Alive", "timeout=5")
	resp.Header.Set("Content-Type", "text/plain")
	removeHopByHop(&resp.Header)
	if len(resp.Header.Peek("X-Internal")) > 0 || len(resp.Header.Peek("Keep-Alive")) > 0 {
		t.Errorf("hop-by-hop headers survived: %s", resp.Header.String())
	}
	if string(resp.Header.ContentType()) != "text/plain" {
		t.Error("Content-Type was removed")
	}
}

func TestSetForwarded(t *testing.T) {
	cases := []struct {
		name, peer, priorXFF, priorProto, wantXFF, wantProto string
	}{
		{"untrusted peer replaces", "203.0.113.9", "1.2.3.4", "https", "203.0.113.9", "http"},
		{"trusted peer extends", "10.1.2.3", "1.2.3.4", "https", "1.2.3.4, 10.1.2.3", "https"},
		{"trusted peer without prior", "127.0.0.1", "", "", "127.0.0.1", "http"},
		{"ipv6 untrusted", "2001:db8::1", "1.2.3.4", "", "2001:db8::1", "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.SetHost("app.test")
			if c.priorXFF != "" {
				h.Set("X-Forwarded-For", c.priorXFF)
			}
			if c.priorProto != "" {
				h.Set("X-Forwarded-Proto", c.priorProto)
			}
			peer := &net.TCPAddr{IP: net.IP(netip.MustParseAddr(c.peer).AsSlice()), Port: 5555}
			setForwarded(&h, peer, DefaultTrusted())
			if got := string(h.Peek("X-Forwarded-For")); got != c.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, c.wantXFF)
			}
			if got := string(h.Peek("X-Forwarded-Proto")); got != c.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, c.wantProto)
			}
			if got := string(h.Peek("X-Forwarded-Host")); got != "app.test" {
				t.Errorf("X-Forwarded-Host = %q, want app.test", got)
			}
		})
	}
}

// splitTokens lists the non-empty elements of a comma-separated list.
func splitTokens(s string) []string {
	var out []string
	for rest := []byte(s); len(rest) > 0; {
		var tok []byte
		if tok, rest = cutToken(rest); len(tok) > 0 {
			out = append(out, string(tok))
		}
	}
	return out
}

func FuzzConnectionTokens(f *testing.F) {
	for _, s := range []string{"", "close", "a, b", ",,,", " \t,x", "keep-alive, Upgrade"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		for _, v := range splitTokens(s) {
			n++
			if v == "" || strings.Contains(v, ",") || strings.Trim(v, " \t") != v {
				t.Fatalf("bad token %q from %q", v, s)
			}
			if !hasToken([]byte(s), v) {
				t.Fatalf("hasToken(%q, %q) = false for a token it yields", s, v)
			}
		}
		if want := len(strings.FieldsFunc(s, func(r rune) bool { return r == ',' })); n > want {
			t.Fatalf("%d tokens from %q, at most %d elements", n, s, want)
		}
	})
}

func FuzzRemoveHopByHop(f *testing.F) {
	f.Add("keep-alive, X-Foo", "X-Foo", "1")
	f.Add("", "Te", "trailers")
	f.Fuzz(func(t *testing.T, conn, name, value string) {
		var h fasthttp.RequestHeader
		h.Set("Connection", conn)
		h.Set(name, value)
		removeHopByHop(&h)
		if len(h.Peek("Connection")) != 0 || len(h.Peek("Keep-Alive")) != 0 {
			t.Fatalf("hop-by-hop header left: %q", h.String())
		}
	})
}
