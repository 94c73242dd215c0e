package health

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostCheck: the admin listener answers only the Hosts it serves (IP
// literals, localhost, Config.Hosts, or none), and 421 naming the fix to
// any other, which a DNS-rebinding page would send. (fasthttp itself
// answers 400 to an HTTP/1.1 request without a Host, as RFC 9112 asks, and
// to a Host it cannot parse.)
func TestHostCheck(t *testing.T) {
	w := &fakeWorkers{}
	w.ready.Store(1)
	_, base := startServer(t, Config{Workers: w, Status: fakeStatus{}, Hosts: []string{"percore.internal", "Admin.Example."}})
	addr := strings.TrimPrefix(base, "http://")
	_, port, _ := net.SplitHostPort(addr)
	cases := []struct {
		request string
		want    int
	}{
		{"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421},
		{"GET /status HTTP/1.1\r\nHost: evil.example:" + port + "\r\n\r\n", 421},
		{"GET /readyz HTTP/1.1\r\nHost: localhost.evil.example\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: 127.0.0.1.nip.io:" + port + "\r\n\r\n", 421},
		{"GET http://evil.example/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 421},
		{"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200},
		{"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n\r\n", 200},
		{"GET /healthz HTTP/1.1\r\nHost: 10.244.1.17:8081\r\n\r\n", 200}, // a Kubernetes probe: the pod's IP
		{"GET /readyz HTTP/1.1\r\nHost: [::1]:" + port + "\r\n\r\n", 200},
		{"GET /readyz HTTP/1.1\r\nHost: [fd00::17]\r\n\r\n", 200},
		{"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
		{"GET /status HTTP/1.1\r\nHost: LocalHost:" + port + "\r\n\r\n", 200},
		{"GET /healthz HTTP/1.1\r\nHost: localhost.\r\n\r\n", 200},
		{"GET /status HTTP/1.1\r\nHost: percore.internal:" + port + "\r\n\r\n", 200},
		{"GET /healthz HTTP/1.1\r\nHost: admin.example\r\n\r\n", 200},
		{"GET /healthz HTTP/1.0\r\n\r\n", 200}, // no Host: an HTTP/1.0 probe
		{"HEAD /readyz HTTP/1.0\r\n\r\n", 200},
	}
	for _, c := range cases {
		code, body := exchange(t, addr, c.request)
		if code != c.want {
			t.Errorf("%q: %d %q, want %d", c.request, code, body, c.want)
			continue
		}
		if code == 421 && !strings.Contains(body, "--admin-hosts") {
			t.Errorf("%q: 421 body %q does not name --admin-hosts", c.request, body)
		}
	}
}

// TestHostNames checks the split of a Host into its name or address.
func TestHostNames(t *testing.T) {
	hosts := newHostSet([]string{"a.example"})
	for host, want := range map[string]bool{
		"":                 true,
		"127.0.0.1":        true,
		"127.0.0.1:1":      true,
		"[::1]":            true,
		"[::1]:8081":       true,
		"::ffff:127.0.0.1": true,
		"localhost":        true,
		"localhost:":       true,
		"a.example:80":     true,
		"A.EXAMPLE":        true,
		"b.example":        false,
		"a.example:x":      false,
		"127.0.0.1:x":      false,
		"[::1]x":           false,
		"[::1":             false,
		"[a.example]":      false,
		"127.1":            false,
		"0x7f000001":       false,
		"localhost:1:2":    false,
	} {
		if got := hosts.allows(host); got != want {
			t.Errorf("allows(%q) = %v, want %v", host, got, want)
		}
	}
}

// exchange sends a raw request on a new connection and returns the status
// and body of the answer.
func exchange(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
