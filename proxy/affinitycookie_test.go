package proxy

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// probeCookie holds what fasthttp's cookie parser mangled: a quoted value
// (quotes stripped), a JSON value (dropped), a pair without a name ("=bare"
// became "bare"), a pair without "=" and a value holding "=".
const probeCookie = `sid="abc def"; prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`

// cookieCases are Cookie lines and what remains of them once percore's
// cookie is taken out ("" for a line removed), with the slot read.
var cookieCases = []struct {
	in, want string
	slot     int
	ok       bool
}{
	{"percore_worker=1; a=1", "a=1", 1, true},
	{"a=1; percore_worker=1; b=2", "a=1; b=2", 1, true},
	{"a=1; percore_worker=1", "a=1", 1, true},
	{"percore_worker=7", "", 7, true},
	{"percore_worker=1; a=1; percore_worker=2", "a=1", 1, true},
	{"a=1; percore_worker=1; percore_worker=2; b=2", "a=1; b=2", 1, true},
	{"a=1;percore_worker=1;b=2", "a=1;b=2", 1, true},
	{"a=1 ;  percore_worker=1  ;b=2", "a=1 ;b=2", 1, true},
	{"a=1;\tpercore_worker = 3 ; b=2", "a=1; b=2", 3, true},
	{"a=1; percore_worker=1;", "a=1;", 1, true},
	{"a=1;; percore_worker=1", "a=1;", 1, true},
	{"percore_worker=1 ;   a=1", "a=1", 1, true},
	{`percore_worker="2"; a=1`, "a=1", 2, true},
	{"percore_worker=x; a=1", "a=1", 0, false},
	{"percore_worker=; a=1", "a=1", 0, false},
	{"percore_worker=0", "", 0, true},
	{probeCookie, probeCookie, 0, false},
	{"percore_worker=4; " + probeCookie, probeCookie, 4, true},
	{`sid="abc def"; percore_worker=4; prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`, probeCookie, 4, true},
	{probeCookie + "; percore_worker=4", probeCookie, 4, true},
	{"xpercore_worker=3; percore_worker_x=4; Percore_Worker=5; percore_worker", "xpercore_worker=3; percore_worker_x=4; Percore_Worker=5; percore_worker", 0, false},
	{"a=percore_worker=1", "a=percore_worker=1", 0, false},
	{"", "", 0, false},
}

func TestAppendWithoutCookie(t *testing.T) {
	for _, c := range cookieCases {
		got, value, found := appendWithoutCookie([]byte("prefix|"), []byte(c.in), AffinityCookieName)
		if string(got) != "prefix|"+c.want {
			t.Errorf("%q: got %q, want %q", c.in, strings.TrimPrefix(string(got), "prefix|"), c.want)
		}
		slot, ok := parseSlotCookie(unquoteCookie(value))
		if found && (slot != c.slot || ok != c.ok) || !found && c.ok {
			t.Errorf("%q: slot %d, %v (found %v), want %d, %v", c.in, slot, ok, found, c.slot, c.ok)
		}
	}
}

// cookieHeaderLines lists the Cookie lines of a request head, in order.
func cookieHeaderLines(head string) []string {
	var lines []string
	for _, line := range headLines(head) {
		if name, value, ok := strings.Cut(line, ": "); ok && strings.EqualFold(name, "Cookie") {
			lines = append(lines, value)
		}
	}
	return lines
}

// TestTakeSlotCookie runs the cases on parsed requests, one Cookie line
// and several, whose order survives another header's deletion.
func TestTakeSlotCookie(t *testing.T) {
	var bufs sync.Pool
	for _, c := range cookieCases {
		req := parseTestRequest(t, "GET / HTTP/1.1\r\nHost: x\r\nCookie: "+c.in+"\r\n\r\n")
		slot, ok := takeSlotCookie(&req.Header, &bufs)
		var want []string
		if c.want != "" || !strings.Contains(c.in, AffinityCookieName) {
			want = []string{c.want} // a line without percore's cookie is left alone, even empty
		}
		if got := cookieHeaderLines(req.Header.String()); !slices.Equal(got, want) || slot != c.slot || ok != c.ok {
			t.Errorf("%q: lines %q, slot %d, %v; want %q, %d, %v", c.in, got, slot, ok, want, c.slot, c.ok)
		}
	}
	for _, c := range []struct {
		lines, want []string
		slot        int
	}{
		{[]string{"a=1; percore_worker=2", "b=2"}, []string{"a=1", "b=2"}, 2},
		{[]string{"a=1", "percore_worker=2", `b="q"`}, []string{"a=1", `b="q"`}, 2},
		{[]string{"percore_worker=3; a=1", "b=2; percore_worker=2", "c=3"}, []string{"a=1", "b=2", "c=3"}, 3},
		{[]string{"a=1", "b=2", "c=3", "d=4", "e=5", "f=6; percore_worker=1"}, []string{"a=1", "b=2", "c=3", "d=4", "e=5", "f=6"}, 1},
	} {
		raw := "GET / HTTP/1.1\r\nX-Drop: 1\r\nHost: x\r\n"
		for _, l := range c.lines {
			raw += "Cookie: " + l + "\r\nX-Drop: 2\r\n"
		}
		req := parseTestRequest(t, raw+"\r\n")
		req.Header.Del("X-Drop") // reorders the stored lines
		slot, ok := takeSlotCookie(&req.Header, &bufs)
		if got := cookieHeaderLines(req.Header.String()); !slices.Equal(got, c.want) || slot != c.slot || !ok {
			t.Errorf("%q: lines %q, slot %d, %v; want %q, %d", c.lines, got, slot, ok, c.want, c.slot)
		}
	}
}

// With --affinity cookie the worker gets the client's Cookie lines byte for
// byte, less percore's pair. fasthttp's cookie parser used to rewrite them:
// quotes stripped, a JSON value dropped, "=bare" turned into "bare", and
// percore_worker passed on. With affinity off they pass untouched.
func TestAffinityCookieLeavesTheAppsCookies(t *testing.T) {
	worker := startHeadEcho(t)
	for _, c := range []struct {
		name     string
		affinity Affinity
		lines    []string
		want     []string
	}{
		{"cookie, pair in the middle", Affinity{Mode: AffinityCookie},
			[]string{`sid="abc def"; percore_worker=0; prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`},
			[]string{probeCookie}},
		{"cookie, pair first", Affinity{Mode: AffinityCookie},
			[]string{"percore_worker=0; " + probeCookie}, []string{probeCookie}},
		{"cookie, pair alone", Affinity{Mode: AffinityCookie}, []string{"percore_worker=0"}, nil},
		{"cookie, no pair", Affinity{Mode: AffinityCookie}, []string{probeCookie}, []string{probeCookie}},
		{"cookie, several lines", Affinity{Mode: AffinityCookie},
			[]string{`a="1"`, "percore_worker=0", "=bare; percore_worker=0;b={}"}, []string{`a="1"`, "=bare;b={}"}},
		{"off", Affinity{}, []string{"percore_worker=0; " + probeCookie}, []string{"percore_worker=0; " + probeCookie}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProxy(t, Config{Affinity: c.affinity}, ServerConfig{}, worker)
			raw := "GET / HTTP/1.1\r\nHost: app.test\r\n"
			for _, l := range c.lines {
				raw += "Cookie: " + l + "\r\n"
			}
			resp, head := rawRoundTrip(t, p.addr, raw+"\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := cookieHeaderLines(head); !slices.Equal(got, c.want) {
				t.Errorf("the worker got the Cookie lines\n%q\nwant\n%q", got, c.want)
			}
			pinned := c.affinity.Mode == AffinityCookie && strings.Contains(raw, "percore_worker=0")
			if set := resp.Header.Get("Set-Cookie"); pinned && set != "" {
				t.Errorf("a request pinned to its worker got Set-Cookie %q", set)
			}
		})
	}
}

// BenchmarkTakeSlotCookie measures taking percore's pair out of a browser's
// Cookie line; each iteration first restores the header from a template.
func BenchmarkTakeSlotCookie(b *testing.B) {
	tmpl := benchParseRequest(b, "GET / HTTP/1.1\r\nHost: x\r\n"+
		"Cookie: _ga=GA1.1.123456789.1700000000; session=0123456789abcdef0123456789abcdef; percore_worker=1; theme=dark\r\n\r\n")
	var h fasthttp.RequestHeader
	var bufs sync.Pool
	b.ReportAllocs()
	for b.Loop() {
		tmpl.Header.CopyTo(&h)
		if slot, ok := takeSlotCookie(&h, &bufs); !ok || slot != 1 {
			b.Fatal(slot, ok)
		}
	}
}

func FuzzAppendWithoutCookie(f *testing.F) {
	for _, c := range cookieCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, _, found := appendWithoutCookie(nil, []byte(in), AffinityCookieName)
		var kept []string
		for _, seg := range strings.Split(in, ";") {
			if k, _, ok := strings.Cut(seg, "="); ok && strings.Trim(k, " \t") == AffinityCookieName {
				continue
			}
			kept = append(kept, seg)
		}
		if want := strings.Trim(strings.Join(kept, ";"), " \t"); string(out) != want {
			t.Fatalf("%q: got %q, want %q", in, out, want)
		}
		if !found && string(out) != strings.Trim(in, " \t") {
			t.Fatalf("%q without percore's pair became %q", in, out)
		}
	})
}
