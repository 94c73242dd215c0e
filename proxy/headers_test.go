package proxy

import (
	"net"
	"net/netip"
	"reflect"
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

// TestSetForwarded checks the forwarding headers a worker gets, per peer
// and trust list. The requests are parsed from the wire, as percore gets
// them. Issue 13: with two X-Forwarded-For lines from an untrusted peer the
// worker saw "127.0.0.1, 7.7.7.7" (Express's req.ip: 7.7.7.7), duplicated
// -Proto and -Host survived, and X-Real-IP, Forwarded, True-Client-IP,
// Fly-Client-IP and CF-Connecting-IP passed through.
func TestSetForwarded(t *testing.T) {
	private, _ := NamedTrusted(TrustedPrivate)
	none, _ := NamedTrusted(TrustedNone)
	spoof := "X-Forwarded-For: 7.7.7.7\r\nX-Forwarded-For: 8.8.8.8\r\n" +
		"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-Host: evil.test\r\nx-forwarded-host: evil2.test\r\n" +
		"X-Real-IP: 7.7.7.7\r\nForwarded: for=7.7.7.7;proto=https\r\nTrue-Client-IP: 7.7.7.7\r\n" +
		"Fly-Client-IP: 7.7.7.7\r\ncf-connecting-ip: 7.7.7.7\r\nX-Forwarded-Port: 443\r\n" +
		"X-Forwarded-Prefix: /admin\r\nX-FORWARDED-SSL: on\r\nX-Forwarded-Client-Cert: x\r\n"
	// What percore sets for an untrusted peer; every other forwarding line is gone.
	own := func(peer string) map[string][]string {
		return map[string][]string{"X-Forwarded-For": {peer}, "X-Forwarded-Proto": {"http"},
			"X-Forwarded-Host": {"app.test"}}
	}
	cases := []struct {
		name    string
		peer    string
		trusted Trusted
		lines   string
		want    map[string][]string // every forwarding header the worker gets, each line
	}{
		{"untrusted peer, everything spoofed", "203.0.113.9", DefaultTrusted(), spoof, own("203.0.113.9")},
		{"private peer untrusted by default", "10.1.2.3", DefaultTrusted(), spoof, own("10.1.2.3")},
		{"loopback peer with none", "127.0.0.1", none, spoof, own("127.0.0.1")},
		{"ipv6 untrusted", "2001:db8::1", DefaultTrusted(), spoof, own("2001:db8::1")},
		{"untrusted, two X-Forwarded-For lines only", "203.0.113.9", DefaultTrusted(),
			"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-For: 7.7.7.7\r\n", own("203.0.113.9")},
		{"trusted peer keeps and appends", "10.1.2.3", private,
			"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 1.2.3.4\r\nFly-Client-IP: 1.2.3.4\r\n",
			map[string][]string{"X-Forwarded-For": {"1.2.3.4, 10.1.2.3"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host": {"app.test"}, "X-Real-Ip": {"1.2.3.4"}, "Fly-Client-Ip": {"1.2.3.4"}}},
		{"trusted peer, lines folded in order", "127.0.0.1", DefaultTrusted(),
			"X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nAccept: */*\r\nx-forwarded-for: 3.3.3.3\r\nX-Forwarded-Host: a.test\r\n",
			map[string][]string{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1"},
				"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"a.test"}}},
		{"trusted peer without prior", "127.0.0.1", DefaultTrusted(), "", own("127.0.0.1")},
		{"trusted peer, X-Forwarded-For named in Connection", "127.0.0.1", DefaultTrusted(),
			"Connection: X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n", map[string][]string{
				"X-Forwarded-For": {"1.2.3.4, 127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.test"}}},
		{"untrusted peer, X-Forwarded-For named in Connection", "203.0.113.9", DefaultTrusted(),
			"Connection: X-Forwarded-For\r\nX-Forwarded-For: 1.2.3.4\r\n", own("203.0.113.9")},
		{"ipv4-mapped peer in an ipv4 range", "::ffff:10.0.0.7", private,
			"X-Forwarded-For: 1.2.3.4\r\n", map[string][]string{"X-Forwarded-For": {"1.2.3.4, 10.0.0.7"},
				"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.test"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			if err := req.Read(bufioReader("GET / HTTP/1.1\r\nHost: app.test\r\n" + c.lines + "\r\n")); err != nil {
				t.Fatal(err)
			}
			h := &req.Header
			peer := &net.TCPAddr{IP: net.IP(netip.MustParseAddr(c.peer).AsSlice()), Port: 5555}
			removeRequestHops(h, c.trusted.has(peer))
			setForwarded(h, peer, c.trusted)
			if got := forwardingLines(h); !reflect.DeepEqual(got, c.want) {
				t.Errorf("the worker gets\n%v\nwant\n%v\nheader:\n%s", got, c.want, h.Header())
			}
		})
	}
}

// TestSetForwardedByHand covers headers without a raw block (set by code,
// not parsed): the fixed names are removed all the same.
func TestSetForwardedByHand(t *testing.T) {
	var h fasthttp.RequestHeader
	h.SetHost("app.test")
	h.Add("X-Forwarded-For", "7.7.7.7")
	h.Add("X-Forwarded-For", "8.8.8.8")
	h.Set("X-Real-IP", "7.7.7.7")
	h.Set("CF-Connecting-IP", "7.7.7.7")
	setForwarded(&h, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9)}, DefaultTrusted())
	want := map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host": {"app.test"}}
	if got := forwardingLines(&h); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	h.Reset()
	h.Set("X-Forwarded-For", "1.2.3.4")
	setForwarded(&h, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, DefaultTrusted())
	if got := string(h.Peek("X-Forwarded-For")); got != "1.2.3.4, 127.0.0.1" {
		t.Errorf("trusted: X-Forwarded-For = %q", got)
	}
}

// forwardingLines lists each forwarding header of h as it would be written,
// with every line's value, keyed by the name as written.
func forwardingLines(h *fasthttp.RequestHeader) map[string][]string {
	got := map[string][]string{}
	for _, line := range strings.Split(string(h.Header()), "\r\n") {
		name, value, ok := strings.Cut(line, ": ")
		if ok && isForwardingHeader([]byte(name)) {
			got[name] = append(got[name], value)
		}
	}
	return got
}

func TestParseTrusted(t *testing.T) {
	cases := []struct{ in, want string }{
		{"loopback", "127.0.0.0/8,::1/128"},
		{"none", "none"},
		{" none ", "none"},
		{"private", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10,100.64.0.0/10"},
		{"fly", "172.16.0.0/12,fdaa::/16"},
		{"loopback,fly", "127.0.0.0/8,::1/128,172.16.0.0/12,fdaa::/16"},
		{"loopback, private", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10,100.64.0.0/10"},
		{" 10.0.0.0/8, 192.168.1.7 ,::ffff:1.2.3.4", "10.0.0.0/8,192.168.1.7/32,1.2.3.4/32"},
		{"fly, 203.0.113.0/24,2001:db8::7", "172.16.0.0/12,fdaa::/16,203.0.113.0/24,2001:db8::7/128"},
		{"10.1.2.3/8,::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"loopback,", "127.0.0.0/8,::1/128"},
	}
	for _, c := range cases {
		got, err := ParseTrusted(c.in)
		if err != nil {
			t.Errorf("ParseTrusted(%q): %v", c.in, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("ParseTrusted(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for in, naming := range map[string]string{
		"banana":              `"banana"`,
		"loopback,banana":     `"banana"`,
		"10.0.0.0/33":         `"10.0.0.0/33"`,
		"private, 10.0.0.0/x": `"10.0.0.0/x"`,
		"Private":             `"Private"`,
		"none,loopback":       `"none"`,
		"loopback, none":      `"none"`,
		",":                   "want loopback, private, fly, none",
		"":                    "want loopback, private, fly, none",
	} {
		_, err := ParseTrusted(in)
		if err == nil || !strings.Contains(err.Error(), naming) {
			t.Errorf("ParseTrusted(%q) = %v, want an error naming %s", in, err, naming)
		}
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

// TestRemoveHopByHopEverySpelling checks each hop-by-hop field alone, in
// three spellings, in requests and responses read from the wire: none of
// them reaches the other side, except "Te: trailers".
func TestRemoveHopByHopEverySpelling(t *testing.T) {
	values := map[string]string{"Connection": "close", "Transfer-Encoding": "chunked", "Upgrade": "websocket",
		"Trailer": "X-Sum", "Te": "gzip"}
	for _, name := range hopHeaders {
		v := values[name]
		if v == "" {
			v = "x"
		}
		for _, spelled := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			line := spelled + ": " + v + "\r\n"
			var resp fasthttp.Response
			resp.Header.SetNoDefaultContentType(true)
			raw := "HTTP/1.1 200 OK\r\nX-Keep: 1\r\n" + line + "\r\n"
			if name != "Transfer-Encoding" {
				raw = "HTTP/1.1 200 OK\r\nX-Keep: 1\r\n" + line + "Content-Length: 0\r\n\r\n"
			}
			if err := resp.Header.Read(bufioReader(raw)); err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
			removeHopByHop(&resp.Header)
			checkNoField(t, "response", resp.Header.String(), name)

			var req fasthttp.Request
			raw = "GET / HTTP/1.1\r\nHost: x\r\nX-Keep: 1\r\n" + line + "\r\n"
			if name == "Transfer-Encoding" {
				raw = "POST / HTTP/1.1\r\nHost: x\r\nX-Keep: 1\r\n" + line + "\r\n0\r\n\r\n"
			}
			if err := req.Header.Read(bufioReader(raw)); err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
			removeHopByHop(&req.Header)
			checkNoField(t, "request", req.Header.String(), name)
		}
	}
	var resp fasthttp.Response
	if err := resp.Header.Read(bufioReader("HTTP/1.1 200 OK\r\nte: Trailers\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	removeHopByHop(&resp.Header)
	if got := string(resp.Header.Peek("Te")); got != "Trailers" {
		t.Errorf(`"Te: trailers" must be kept, got %q in %q`, got, resp.Header.String())
	}
}

// checkNoField fails when the header block head has a field called name,
// compared without case.
func checkNoField(t *testing.T, what, head, name string) {
	t.Helper()
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			t.Errorf("%s: %s survived:\n%s", what, name, head)
		}
	}
	if !strings.Contains(head, "X-Keep: 1") {
		t.Errorf("%s: X-Keep was removed:\n%s", what, head)
	}
}

// TestRequestHops checks which hop-by-hop fields a request is taken to
// hold: those of its header block as it came, or all of them when the
// block cannot tell.
func TestRequestHops(t *testing.T) {
	parsed := func(raw string) *fasthttp.RequestHeader {
		var h fasthttp.RequestHeader
		if err := h.Read(bufioReader(raw)); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		return &h
	}
	var built fasthttp.RequestHeader
	built.Set("Keep-Alive", "1")
	cases := []struct {
		name string
		h    *fasthttp.RequestHeader
		want uint16
	}{
		{"none", parsed("GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), 0},
		{"some, any case", parsed("GET / HTTP/1.1\r\nHost: x\r\nconnection: close\r\nPROXY-AUTHORIZATION: a\r\nte: trailers\r\n\r\n"),
			1<<0 | 1<<4 | 1<<5},
		{"not read from the wire", &built, allHops},
		{"chunked body", parsed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), allHops},
	}
	for _, c := range cases {
		if got := requestHops(c.h); got != c.want {
			t.Errorf("%s: requestHops = %b, want %b", c.name, got, c.want)
		}
	}
	if hopHeaders[0] != "Connection" || connectionHop != 1 {
		t.Error("connectionHop is not the bit of Connection")
	}
}

// FuzzHopsMatchFullList checks that deleting only the hop-by-hop fields a
// header block holds leaves the same header as deleting the whole list,
// for requests percore accepts and for responses.
func FuzzHopsMatchFullList(f *testing.F) {
	f.Add("Connection: keep-alive, X-A\r\nX-A: 1\r\nkeep-alive: 5\r\nTE: trailers\r\n")
	f.Add("Upgrade: h2c\r\nPROXY-Connection: x\r\nTrailer: X-S\r\n")
	f.Fuzz(func(t *testing.T, lines string) {
		var req fasthttp.RequestHeader
		if req.Read(bufioReader("GET / HTTP/1.1\r\nHost: x\r\n"+lines+"\r\n")) == nil {
			if status, _ := checkRequest(&req); status == 0 {
				var full fasthttp.RequestHeader
				req.CopyTo(&full)
				removeRequestHops(&req, false)
				removeConnectionTokens(&full)
				deleteHops(&full, allHops)
				if got, want := req.String(), full.String(); got != want {
					t.Fatalf("request:\n%s\nwant:\n%s", got, want)
				}
			}
		}
		var resp fasthttp.ResponseHeader
		if resp.Read(bufioReader("HTTP/1.1 200 OK\r\n"+lines+"Content-Length: 0\r\n\r\n")) == nil {
			var full fasthttp.ResponseHeader
			resp.CopyTo(&full)
			removeHopByHop(&resp)
			removeConnectionTokens(&full)
			deleteHops(&full, allHops)
			if got, want := resp.String(), full.String(); got != want {
				t.Fatalf("response:\n%s\nwant:\n%s", got, want)
			}
		}
	})
}

// removeConnectionTokens deletes the fields h's Connection header names.
func removeConnectionTokens(h interface {
	Peek(key string) []byte
	Del(key string)
}) {
	for _, tok := range splitTokens(string(h.Peek("Connection"))) {
		h.Del(tok)
	}
}

func TestHopIndex(t *testing.T) {
	for i, name := range hopHeaders {
		for _, spelled := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := hopIndex([]byte(spelled)); got != i {
				t.Errorf("hopIndex(%q) = %d, want %d", spelled, got, i)
			}
		}
	}
	for _, name := range []string{"", "T", "Tee", "Connections", "X-Upgrade", "Content-Type"} {
		if got := hopIndex([]byte(name)); got != -1 {
			t.Errorf("hopIndex(%q) = %d, want -1", name, got)
		}
	}
}
