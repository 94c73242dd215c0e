package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestCheckRequest(t *testing.T) {
	cases := []struct {
		name, raw string
		want      int
	}{
		{"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 0},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0},
		{"chunked, any case", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n", 0},
		{"Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", 0},
		{"header named like a framing one", "GET / HTTP/1.1\r\nHost: a\r\nX-Content-Length: 5\r\nContent-Lengthy: 1\r\n\r\n", 0},
		{"HTTP/1.7", "GET / HTTP/1.7\r\nHost: a\r\n\r\n", 505},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
		{"CL then TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE then CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", 400},
		{"TE identity with CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", 400},
		{"TE identity alone", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", 400},
		{"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", 400},
		{"absolute-form http", "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"absolute-form HTTP, port and userinfo", "GET HTTP://u@a:8080?q HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"absolute-form https", "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form ws", "GET ws://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form without a host", "GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form with a port only", "GET http://:80/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"Connection: keep-alive", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-A\r\n\r\n", 0},
		{"Connection: Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\nx", 400},
		{"Connection: transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nconnection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"Connection: Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n", 400},
		{"space in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", 400},
		{"token characters in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX-a.b_c!#$%&'*+^`|~9: b\r\n\r\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := parseTestRequest(t, c.raw)
			if got, why := checkRequest(&req.Header); got != c.want {
				t.Errorf("checkRequest = %d (%s), want %d", got, why, c.want)
			}
		})
	}
}

func TestScanHeaderBlock(t *testing.T) {
	cases := []struct {
		raw  string
		want headerBlock
	}{
		{"", headerBlock{}},
		{"Host: a\r\n\r\n", headerBlock{}},
		{"Content-Length: 1\r\ncontent-length: 2\r\n\r\n", headerBlock{contentLength: 2}},
		{"TRANSFER-ENCODING: chunked\r\n\r\n", headerBlock{transferEncoding: 1, chunked: true}},
		{"Transfer-Encoding:\tChunked \r\n\r\n", headerBlock{transferEncoding: 1, chunked: true}},
		{"Transfer-Encoding: identity\r\n\r\n", headerBlock{transferEncoding: 1}},
		{"A: 1\n\r\n", headerBlock{bareLF: true}},
		{"A: 1\r\n b\r\n\r\n", headerBlock{folded: true}},
		{"X A: 1\r\n\r\n", headerBlock{badName: true}},
		{"X\"A: 1\r\n\r\n", headerBlock{badName: true}},
		{"A: 1\r\n\r\nContent-Length: 5\r\n", headerBlock{}}, // after the end: not a header
	}
	for _, c := range cases {
		if got := scanHeaderBlock([]byte(c.raw)); got != c.want {
			t.Errorf("scanHeaderBlock(%q) = %+v, want %+v", c.raw, got, c.want)
		}
	}
}

// FuzzCheckRequest feeds arbitrary bytes to fasthttp's request parser, as
// the server does, and checks that whatever checkRequest lets through is
// unambiguous: one framing, no folded or LF-only lines, a known version.
func FuzzCheckRequest(f *testing.F) {
	seeds := []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\nX: 1\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n",
		"GET / HTTP/1.7\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // fasthttp refuses it itself
		}
		if status, _ := checkRequest(&h); status != 0 {
			return
		}
		hdr := h.RawHeaders()
		end := bytes.Index(hdr, []byte("\r\n\r\n"))
		if end < 0 {
			end = len(hdr)
		}
		block := string(hdr[:end])
		lines := strings.Split(block, "\r\n")
		cl, te := 0, 0
		for _, line := range lines {
			if strings.Contains(line, "\n") || strings.Contains(line, "\r") {
				t.Fatalf("accepted a bare CR or LF in %q", block)
			}
			if line != "" && (line[0] == ' ' || line[0] == '\t') {
				t.Fatalf("accepted obs-fold in %q", block)
			}
			name, _, _ := strings.Cut(line, ":")
			switch strings.ToLower(name) {
			case "content-length":
				cl++
			case "transfer-encoding":
				te++
			}
		}
		if te > 0 && (cl > 0 || h.ContentLength() != -1) {
			// fasthttp's header parser marks a chunked body with -1.
			t.Fatalf("accepted Transfer-Encoding with Content-Length or not chunked: %q", block)
		}
		if p := string(h.Protocol()); p != "HTTP/1.1" && p != "HTTP/1.0" {
			t.Fatalf("accepted protocol %q", p)
		}
	})
}

// FuzzHeaderRewrite runs a parsed request through the header rewrite done
// before forwarding and checks what the worker would get: no hop-by-hop
// header left, none named by the client's Connection, and X-Forwarded-For
// that is the peer's address alone, with no other forwarding header than
// percore's own, when the peer is not trusted.
func FuzzHeaderRewrite(f *testing.F) {
	f.Add("keep-alive, X-Drop", "X-Drop", "1", "6.6.6.6", true)
	f.Add("close", "Te", "trailers", "", false)
	f.Add("Upgrade, x-a,, ,X-B", "Upgrade", "websocket", "1.2.3.4, 5.6.7.8", true)
	f.Add("close", "x-forwarded-for", "7.7.7.7", "1.2.3.4", false)
	f.Add("X-Real-IP", "X-Real-IP", "7.7.7.7", "", false)
	f.Add("", "X-Forwarded-Proto", "https", "1.2.3.4", true)
	f.Fuzz(func(t *testing.T, conn, name, value, xff string, trusted bool) {
		var req fasthttp.Request
		raw := "GET / HTTP/1.1\r\nHost: a\r\nConnection: " + conn + "\r\n" + name + ": " + value +
			"\r\nX-Forwarded-For: " + xff + "\r\nKeep-Alive: 5\r\n\r\n"
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		h := &req.Header
		named := splitTokens(string(h.Peek("Connection")))
		removeHopByHop(h)
		peer := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 5), Port: 1}
		list := Trusted{}
		if trusted {
			list, _ = NamedTrusted(TrustedPrivate)
			peer.IP = net.IPv4(10, 0, 0, 1)
		}
		setForwarded(h, peer, list)
		for _, n := range named {
			if len(h.Peek(n)) > 0 && !strings.EqualFold(n, "X-Forwarded-For") &&
				!strings.EqualFold(n, "X-Forwarded-Proto") && !strings.EqualFold(n, "X-Forwarded-Host") && !strings.EqualFold(n, "Host") {
				t.Fatalf("header %q named in Connection survived: %q", n, h.String())
			}
		}
		for _, hop := range hopHeaders {
			if hop == "Te" {
				continue
			}
			if len(h.Peek(hop)) > 0 {
				t.Fatalf("hop-by-hop %s survived: %q", hop, h.String())
			}
		}
		got := string(h.Peek("X-Forwarded-For"))
		if !trusted && got != "203.0.113.5" {
			t.Fatalf("untrusted peer: X-Forwarded-For = %q", got)
		}
		if lines := forwardingLines(h); !trusted && (len(lines) != 3 || len(lines["X-Forwarded-For"]) != 1 ||
			len(lines["X-Forwarded-Proto"]) != 1 || len(lines["X-Forwarded-Host"]) != 1) {
			t.Fatalf("untrusted peer: forwarding headers %v", lines)
		}
		if trusted && !strings.HasSuffix(got, "10.0.0.1") {
			t.Fatalf("trusted peer: X-Forwarded-For = %q, want the peer appended", got)
		}
	})
}

func FuzzValidRequestID(f *testing.F) {
	f.Add([]byte("abc-123"))
	f.Add([]byte("a b"))
	f.Fuzz(func(t *testing.T, v []byte) {
		if !validRequestID(v) {
			return
		}
		if len(v) > maxRequestIDLen || bytes.ContainsAny(v, " \r\n\t\x00\x7f") {
			t.Fatalf("accepted %q", v)
		}
	})
}
