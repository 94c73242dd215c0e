package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/proxy"
)

// spoofedRequest is a request whose client claims another address, scheme
// and host in every header an app might read, with X-Forwarded-For,
// -Proto and -Host given twice.
const spoofedRequest = "GET /headers HTTP/1.1\r\nHost: app.test\r\n" +
	"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-For: 7.7.7.7\r\n" +
	"X-Forwarded-Proto: https\r\nx-forwarded-proto: https\r\n" +
	"X-Forwarded-Host: bank.test\r\nX-Forwarded-Host: bank.test\r\n" +
	"X-Real-IP: 7.7.7.7\r\nForwarded: for=7.7.7.7;proto=https\r\nTrue-Client-IP: 7.7.7.7\r\n" +
	"Fly-Client-IP: 7.7.7.7\r\nCF-Connecting-IP: 7.7.7.7\r\nX-Forwarded-Port: 443\r\n" +
	"X-Forwarded-Prefix: /admin\r\nConnection: close\r\n\r\n"

// TestForwardingHeadersFromUntrustedPeer is issue 13's repro: a client
// (127.0.0.1, made untrusted with --trusted-proxies none) that sends two
// X-Forwarded-For lines. The worker saw "127.0.0.1, 7.7.7.7", so Express
// with "trust proxy" set to loopback reported req.ip 7.7.7.7; duplicated
// -Proto and -Host and X-Real-IP, Forwarded, True-Client-IP, Fly-Client-IP
// and CF-Connecting-IP reached it untouched.
func TestForwardingHeadersFromUntrustedPeer(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--trusted-proxies", "none", "--", "node", proxyAppJS())

	seen := sendForHeaders(t, in.addr, spoofedRequest)
	want := []string{"x-forwarded-for: 127.0.0.1", "x-forwarded-proto: http", "x-forwarded-host: app.test"}
	if got := seen.forwardingLines(); !reflect.DeepEqual(got, want) {
		t.Errorf("the worker got the forwarding lines\n%q\nwant only percore's own\n%q", got, want)
	}
	if ip := expressIP(seen.Headers["x-forwarded-for"], "127.0.0.1"); ip != "127.0.0.1" {
		t.Errorf(`Express ("trust proxy": loopback) would see req.ip %s, want 127.0.0.1`, ip)
	}
}

// TestForwardingHeadersFromTrustedPeer checks that a trusted peer (loopback,
// the default) keeps its headers and that its X-Forwarded-For lines reach
// the worker as one list, in order, with the peer appended.
func TestForwardingHeadersFromTrustedPeer(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())

	seen := sendForHeaders(t, in.addr, "GET /headers HTTP/1.1\r\nHost: app.test\r\n"+
		"X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Real-IP: 1.1.1.1\r\nX-Forwarded-For: 3.3.3.3\r\n"+
		"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n")
	want := []string{"x-forwarded-proto: https", "x-real-ip: 1.1.1.1",
		"x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1", "x-forwarded-host: app.test"}
	got := seen.forwardingLines()
	if !sameLines(got, want) {
		t.Errorf("the worker got the forwarding lines\n%q\nwant\n%q", got, want)
	}
}

// TestForwardingHeaderTable sends every header of percore's table of
// client-address headers with a forged 6.6.6.6: from an untrusted peer no
// line of them reaches the worker, from a trusted one each does. Before
// the table, X-Client-IP, X-Cluster-Client-IP, Client-IP, X-Forwarded,
// Forwarded-For and others passed from anyone.
func TestForwardingHeaderTable(t *testing.T) {
	needNode(t)
	req := "GET /headers HTTP/1.1\r\nHost: app.test\r\n" + tableSpoofLines() + "Connection: close\r\n\r\n"

	in := start(t, "--workers", "1", "--health-interval", "off", "--trusted-proxies", "none", "--", "node", proxyAppJS())
	seen := sendForHeaders(t, in.addr, req)
	for i := 0; i+1 < len(seen.RawHeaders); i += 2 {
		if strings.Contains(seen.RawHeaders[i+1], "6.6.6.6") {
			t.Errorf("untrusted peer: %s: %s reached the worker", seen.RawHeaders[i], seen.RawHeaders[i+1])
		}
	}
	want := []string{"x-forwarded-for: 127.0.0.1", "x-forwarded-proto: http", "x-forwarded-host: app.test"}
	if got := seen.forwardingLines(); !reflect.DeepEqual(got, want) {
		t.Errorf("untrusted peer: the worker got the forwarding lines\n%q\nwant only percore's own\n%q", got, want)
	}
	in.signal(syscall.SIGTERM)
	in.wait(20 * time.Second)

	in = start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())
	seen = sendForHeaders(t, in.addr, req)
	for _, entry := range proxy.ForwardingHeaders() {
		name := strings.ToLower(tableName(entry))
		want := "6.6.6.6"
		if name == "x-forwarded-for" {
			want = "6.6.6.6, 127.0.0.1"
		}
		if got := seen.Headers[name]; got != want {
			t.Errorf("trusted peer: the worker got %s: %q, want %q", name, got, want)
		}
	}
}

// TestRequestIPPackageSeesThePeer runs an app that asks the request-ip
// package for the client's address, as the probe's app did: a client
// (untrusted with --trusted-proxies none) that forges 6.6.6.6 in every
// client-address header is reported as 127.0.0.1. request-ip reads
// X-Client-IP before X-Forwarded-For, so when X-Client-IP passed the app
// reported 6.6.6.6. From a trusted peer it reports 6.6.6.6, the edge's
// word: the app does read the headers.
func TestRequestIPPackageSeesThePeer(t *testing.T) {
	modules := testModules(t, "requestip", "request-ip")
	req := "GET / HTTP/1.1\r\nHost: app.test\r\n" + tableSpoofLines() + "Connection: close\r\n\r\n"
	app := filepath.Join("testdata", "request-ip-app.js")
	for _, c := range []struct {
		trust, want string
	}{
		{"none", "127.0.0.1"},
		{"loopback", "6.6.6.6"},
	} {
		in := launchBin(t, percoreBin, []string{"NODE_PATH=" + modules}, nil,
			"--workers", "1", "--health-interval", "off", "--trusted-proxies", c.trust, "--", "node", app)
		in.waitLog("worker ready", 30*time.Second)
		if seen := sendForHeaders(t, in.addr, req); seen.IP != c.want {
			t.Errorf("--trusted-proxies %s: request-ip reported %q, want %q; the worker got %v", c.trust, seen.IP, c.want, seen.Headers)
		}
		in.signal(syscall.SIGTERM)
		in.wait(20 * time.Second)
	}
}

// TestTrustedEdgeNamingItsHeadersInConnection is an edge (loopback,
// trusted by default) that names its forwarding headers in Connection: the
// worker gets them, with percore's peer appended to X-Forwarded-For. They
// used to be removed as hop-by-hop first, and the worker saw the edge's
// address as the client's.
func TestTrustedEdgeNamingItsHeadersInConnection(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--health-interval", "off", "--", "node", proxyAppJS())
	seen := sendForHeaders(t, in.addr, "GET /headers HTTP/1.1\r\nHost: app.test\r\n"+
		"Connection: close, X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Edge-Only\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Edge-Only: 1\r\n\r\n")
	want := []string{"x-forwarded-for: 203.0.113.7, 127.0.0.1", "x-real-ip: 203.0.113.7",
		"x-forwarded-proto: https", "x-forwarded-host: app.test"}
	if got := seen.forwardingLines(); !sameLines(got, want) {
		t.Errorf("the worker got the forwarding lines\n%q\nwant\n%q", got, want)
	}
	if v, ok := seen.Headers["x-edge-only"]; ok {
		t.Errorf("X-Edge-Only: %s, named in Connection, reached the worker", v)
	}
	if ip := expressIP(seen.Headers["x-forwarded-for"], "127.0.0.1"); ip != "203.0.113.7" {
		t.Errorf(`Express ("trust proxy": loopback) would see req.ip %s, want 203.0.113.7`, ip)
	}
}

// tableName gives an entry of proxy.ForwardingHeaders as a header name: a
// prefix ("X-Forwarded-*") with something after it.
func tableName(entry string) string {
	if p, ok := strings.CutSuffix(entry, "*"); ok {
		return p + "Example"
	}
	return entry
}

// tableSpoofLines is every header of proxy.ForwardingHeaders with 6.6.6.6.
func tableSpoofLines() string {
	var b strings.Builder
	for _, entry := range proxy.ForwardingHeaders() {
		b.WriteString(tableName(entry) + ": 6.6.6.6\r\n")
	}
	return b.String()
}

// inTable reports whether a header name is one of proxy.ForwardingHeaders.
func inTable(name string) bool {
	name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
	for _, entry := range proxy.ForwardingHeaders() {
		entry = strings.ToLower(entry)
		if p, ok := strings.CutSuffix(entry, "*"); ok && strings.HasPrefix(name, p) && len(name) > len(p) || name == entry {
			return true
		}
	}
	return false
}

// seenHeaders is what the proxy test app answers on /headers, and the
// request-ip app on any path (with IP).
type seenHeaders struct {
	IP         string            `json:"ip"`
	Headers    map[string]string `json:"headers"`
	RawHeaders []string          `json:"rawHeaders"`
}

// forwardingLines lists the forwarding header lines the worker received,
// as "name: value" with the name in lower case, in order.
func (s seenHeaders) forwardingLines() []string {
	var lines []string
	for i := 0; i+1 < len(s.RawHeaders); i += 2 {
		if name := strings.ToLower(s.RawHeaders[i]); inTable(name) {
			lines = append(lines, name+": "+s.RawHeaders[i+1])
		}
	}
	return lines
}

func sameLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l]--; count[l] < 0 {
			return false
		}
	}
	return true
}

// sendForHeaders writes raw to percore and decodes the worker's answer.
func sendForHeaders(t *testing.T, addr, raw string) seenHeaders {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var s seenHeaders
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// expressIP is the client address Express reports as req.ip with "trust
// proxy" set to "loopback" (the proxy-addr package): walking from the
// socket's address leftwards through X-Forwarded-For (as Node joins its
// lines), the first address that is not loopback, else the leftmost.
func expressIP(xff, socket string) string {
	addrs := []string{socket}
	parts := strings.Split(xff, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		if p := strings.TrimSpace(parts[i]); p != "" {
			addrs = append(addrs, p)
		}
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Unmap().IsLoopback() {
			return a
		}
	}
	return addrs[len(addrs)-1]
}
