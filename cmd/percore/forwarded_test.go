package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
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

// seenHeaders is what the proxy test app answers on /headers.
type seenHeaders struct {
	Headers    map[string]string `json:"headers"`
	RawHeaders []string          `json:"rawHeaders"`
}

// forwardingLines lists the forwarding header lines the worker received,
// as "name: value" with the name in lower case, in order.
func (s seenHeaders) forwardingLines() []string {
	var lines []string
	for i := 0; i+1 < len(s.RawHeaders); i += 2 {
		name := strings.ToLower(s.RawHeaders[i])
		switch {
		case strings.HasPrefix(name, "x-forwarded-"), name == "forwarded", name == "x-real-ip",
			name == "true-client-ip", name == "fly-client-ip", name == "cf-connecting-ip":
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
