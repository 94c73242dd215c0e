package proxy

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

// startHeadEcho starts a raw worker that answers each request with the
// request's head, byte for byte, as its body.
func startHeadEcho(t *testing.T) string {
	t.Helper()
	w := startRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, err := readHeadLines(br)
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, plainAnswer(head)); err != nil {
				return
			}
		}
	})
	return w.addr()
}

// headLines splits a request head into its header lines, without the
// request line and the empty line.
func headLines(head string) []string {
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	return lines[1:]
}

// sampleName gives a table entry as a header name: a prefix entry
// ("X-Forwarded-*") with something after it.
func sampleName(entry string) string {
	if p, ok := strings.CutSuffix(entry, "*"); ok {
		return p + "Example"
	}
	return entry
}

// spoofingLines writes every header of forwardingHeaders with the forged
// address 6.6.6.6 (a scheme, port or host where one is read), as it is
// written, in lower case and in upper case with "_" for "-".
func spoofingLines() string {
	var b strings.Builder
	for _, entry := range forwardingHeaders {
		name := sampleName(entry)
		for _, n := range []string{name, strings.ToLower(name), strings.ReplaceAll(strings.ToUpper(name), "-", "_")} {
			b.WriteString(n + ": 6.6.6.6\r\n")
		}
	}
	return b.String()
}

func TestForwardingHeadersTable(t *testing.T) {
	seen := map[string]bool{}
	for _, entry := range forwardingHeaders {
		key := strings.ToLower(entry)
		if seen[key] {
			t.Errorf("%s is in the table twice", entry)
		}
		seen[key] = true
		name := sampleName(entry)
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name), strings.ReplaceAll(name, "-", "_")} {
			if !isForwardingHeader([]byte(n)) {
				t.Errorf("isForwardingHeader(%q) = false for the table's %s", n, entry)
			}
		}
	}
	for _, name := range []string{"", "Via", "Host", "Cookie", "Connection", "X-Request-Id", "Fly-Region", "X-Real-IPs",
		"X-Real-I", "Forwarded-Fors", "X-Forwarded-", "X-Forwarde", "Client-IPs", "X-Client-Ip-", "Accept",
		"X-ForwardedFor", "CF-Ray", "True-Client", "X-Real-IP\x00"} {
		if isForwardingHeader([]byte(name)) {
			t.Errorf("isForwardingHeader(%q) = true", name)
		}
	}
	if got := ForwardingHeaders(); !slices.Equal(got, forwardingHeaders[:]) {
		t.Errorf("ForwardingHeaders() = %q", got)
	}
}

// An untrusted peer that sends every client-address header of the table
// with a forged 6.6.6.6, in any case and with "_" for "-": no line of them
// reaches the worker, which gets percore's own X-Forwarded-For, -Proto and
// -Host only. Before the table, X-Client-IP (which the request-ip package
// reads first), X-Cluster-Client-IP, Client-IP, X-Forwarded, Forwarded-For
// and the others passed, and an app using request-ip saw 6.6.6.6. From a
// trusted peer every line arrives.
func TestForwardingHeadersTableThroughProxy(t *testing.T) {
	worker := startHeadEcho(t)
	req := "GET /ip HTTP/1.1\r\nHost: app.test\r\n" + spoofingLines() + "Accept: */*\r\n\r\n"

	untrusted := startProxy(t, Config{Trusted: Trusted{}}, ServerConfig{}, worker)
	resp, head := rawRoundTrip(t, untrusted.addr, req)
	if resp.StatusCode != 200 {
		t.Fatalf("untrusted: status %d", resp.StatusCode)
	}
	var forwarding []string
	for _, line := range headLines(head) {
		name, _, _ := strings.Cut(line, ":")
		if strings.Contains(line, "6.6.6.6") {
			t.Errorf("untrusted peer: %q reached the worker", line)
		}
		if isForwardingHeader([]byte(name)) {
			forwarding = append(forwarding, line)
		}
	}
	slices.Sort(forwarding)
	want := []string{"X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: app.test", "X-Forwarded-Proto: http"}
	if !slices.Equal(forwarding, want) {
		t.Errorf("untrusted peer: the worker got the forwarding lines\n%q\nwant\n%q", forwarding, want)
	}

	trusted := startProxy(t, Config{}, ServerConfig{}, worker)
	_, head = rawRoundTrip(t, trusted.addr, req)
	got := map[string]bool{}
	for _, line := range headLines(head) {
		got[strings.ToLower(line)] = true
	}
	for _, line := range strings.Split(strings.TrimSuffix(spoofingLines(), "\r\n"), "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		if strings.EqualFold(name, "X-Forwarded-For") {
			continue
		}
		if !got[strings.ToLower(line)] {
			t.Errorf("trusted peer: %q did not reach the worker", line)
		}
	}
	if !got["x-forwarded-for: 6.6.6.6, 6.6.6.6, 127.0.0.1"] {
		t.Errorf("trusted peer: no X-Forwarded-For of its two lines and the peer in\n%s", head)
	}
}

// A trusted edge that names its forwarding headers in Connection keeps
// them: the worker gets the edge's client address, not the edge's own.
// Hop-by-hop removal used to delete them first, so the worker saw
// X-Forwarded-For: 127.0.0.1 and no X-Real-IP. Other headers named there
// are still removed, and from an untrusted peer nothing changes.
func TestTrustedConnectionKeepsForwardingHeaders(t *testing.T) {
	worker := startHeadEcho(t)
	req := "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Forwarded-For, x-real-ip, X-Forwarded-Proto, X-Drop\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Drop: 1\r\n\r\n"
	for _, c := range []struct {
		name    string
		trusted Trusted
		want    []string
	}{
		{"trusted", nil, []string{"X-Forwarded-For: 203.0.113.7, 127.0.0.1", "X-Forwarded-Host: app.test",
			"X-Forwarded-Proto: https", "X-Real-Ip: 203.0.113.7"}},
		{"untrusted", Trusted{}, []string{"X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: app.test",
			"X-Forwarded-Proto: http"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProxy(t, Config{Trusted: c.trusted}, ServerConfig{}, worker)
			_, head := rawRoundTrip(t, p.addr, req)
			var forwarding []string
			for _, line := range headLines(head) {
				name, _, _ := strings.Cut(line, ":")
				if isForwardingHeader([]byte(name)) {
					forwarding = append(forwarding, line)
				}
				if strings.EqualFold(name, "X-Drop") || strings.EqualFold(name, "Connection") {
					t.Errorf("hop-by-hop %q reached the worker", line)
				}
			}
			slices.Sort(forwarding)
			if !slices.Equal(forwarding, c.want) {
				t.Errorf("the worker got the forwarding lines\n%q\nwant\n%q", forwarding, c.want)
			}
		})
	}
}

// FuzzIsForwardingHeader checks the indexed look-up against the table read
// the plain way.
func FuzzIsForwardingHeader(f *testing.F) {
	for _, entry := range forwardingHeaders {
		f.Add(sampleName(entry))
	}
	f.Add("X-Forwarded-")
	f.Add("x_real_ip")
	f.Fuzz(func(t *testing.T, name string) {
		folded := strings.Map(func(r rune) rune { // ASCII only, as header names
			switch {
			case 'A' <= r && r <= 'Z':
				return r + 'a' - 'A'
			case r == '_':
				return '-'
			}
			return r
		}, name)
		want := false
		for _, entry := range forwardingHeaders {
			entry = strings.ToLower(entry)
			if p, ok := strings.CutSuffix(entry, "*"); ok {
				want = want || len(folded) > len(p) && strings.HasPrefix(folded, p)
			} else {
				want = want || folded == entry
			}
		}
		if got := isForwardingHeader([]byte(name)); got != want {
			t.Fatalf("isForwardingHeader(%q) = %v, want %v", name, got, want)
		}
	})
}
