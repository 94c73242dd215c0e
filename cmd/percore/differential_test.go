package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// requestShape is one request, as raw bytes, of the request table. In raw,
// {P} stands for the shape's own target path (/d/sNN) and {S} for its id
// (sNN), which the recording app uses to tell the shapes apart; a second
// pipelined request targets {P}/b and carries no body.
type requestShape struct {
	name string
	raw  string
	// refuse marks an ambiguous request: percore must not forward any of
	// it (RFC 9112 sections 2.2, 5, 6 and 9.3 allow it to be read more than
	// one way, or it is no HTTP/1.x request at all).
	refuse bool
	// forward marks a request percore must forward (its first request).
	forward bool
	// close marks a malformed request after which percore must close the
	// connection, as the stream that follows cannot be trusted; every
	// refused shape must close as well.
	close bool
	// body is the body the first request carries as RFC 9112 reads it; a
	// forwarded request whose body reached its end must carry exactly this.
	body string
	reqs int  // the requests in raw; 0 means 1
	want int  // the status percore must answer first; 0: any but 502 and 504
	half bool // end the client's side after the write
}

// requestShapes is the request table: smuggling, framing, header syntax,
// versions and forms of the target.
var requestShapes = []requestShape{
	// Content-Length against Transfer-Encoding.
	{name: "CL then TE", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE then CL", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "CL.TE smuggling a request", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {P}/b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "TE chunked, identity", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE identity, chunked", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE identity with CL", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "TE gzip, chunked", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE chunked, chunked", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE xchunked", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "two TE lines", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "space before the TE colon", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "space before the CL colon", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello"},
	{name: "obs-fold of TE", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "obs-fold of another header", refuse: true,
		raw: "GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
	{name: "TE chunked after a tab", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE Chunked in capitals", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE in HTTP/1.0", refuse: true,
		raw: "POST {P} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "TE on a GET", body: "hello",
		raw: "GET {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	// Content-Length values.
	{name: "two CL values", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
	{name: "two equal CL lines", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "CL list 5, 5", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"},
	{name: "CL list 5, 6", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"},
	{name: "CL +5", refuse: true, raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"},
	{name: "CL -1", refuse: true, raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello"},
	{name: "CL 0x5", refuse: true, raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"},
	{name: "CL 5a", refuse: true, raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5a\r\n\r\nhello"},
	{name: "CL 5 5", refuse: true, raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello"},
	{name: "CL overflow", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nhello"},
	{name: "CL with spaces around", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length:   5  \r\n\r\nhello"},
	{name: "CL with underscore", body: "", want: 0,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\n"},
	{name: "CL body cut by the client", body: "hello", half: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"},
	{name: "CL then a pipelined request", body: "hello", reqs: 2,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET {P}/b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "CL on a GET", body: "hello",
		raw: "GET {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"},
	// Chunked bodies.
	{name: "chunk size overflow", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size zz", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size -5", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size 0x5", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk extension", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk extension with a bare LF", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk extension with a control byte", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk data longer than its size", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size line in bare LF", refuse: true,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"},
	{name: "chunk with trailers", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"},
	{name: "chunked, then a request in the body", body: "", reqs: 2,
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {P}/b HTTP/1.1\r\nHost: x\r\n\r\n"},
	// Line endings and bytes.
	{name: "bare LF ending a header line", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n"},
	{name: "bare LF everywhere", refuse: true, want: 400, raw: "GET {P} HTTP/1.1\nHost: x\nX-A: a\n\n"},
	{name: "bare CR in a header", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n"},
	{name: "bare CR in the request line", refuse: true, raw: "GET {P}\rHTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "NUL in a header value", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"},
	{name: "NUL in the target", refuse: true, raw: "GET {P}\x00 HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "space in a header name", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n"},
	{name: "( in a header name", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n"},
	{name: "empty header name", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n"},
	{name: "header line without colon", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: x\r\nXA b\r\n\r\n"},
	{name: "two spaces in the request line", refuse: true, raw: "GET  {P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "tabs in the request line", refuse: true, raw: "GET\t{P}\tHTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "two Host lines", refuse: true, raw: "GET {P} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "no Host in HTTP/1.1", refuse: true, raw: "GET {P} HTTP/1.1\r\n\r\n"},
	{name: "huge header", raw: "GET {P} HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"},
	// Targets.
	{name: "absolute-form http", forward: true, want: 200, raw: "GET http://x{P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "absolute-form https", refuse: true, want: 400, raw: "GET https://x{P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "absolute-form ftp", refuse: true, want: 400, raw: "GET ftp://x{P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "absolute-form without scheme host", refuse: true, raw: "GET http:{P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "target //host/path", raw: "GET /{P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "target with fragment", raw: "GET {P}#frag HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "OPTIONS *", raw: "OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Shape: {S}\r\n\r\n"},
	{name: "CONNECT", refuse: true, raw: "CONNECT x.test:443 HTTP/1.1\r\nHost: x.test:443\r\nX-Shape: {S}\r\n\r\n"},
	// Versions.
	{name: "HTTP/1.0 without Host", forward: true, want: 200, raw: "GET {P} HTTP/1.0\r\n\r\n"},
	{name: "HTTP/1.0 keep-alive", forward: true, want: 200, raw: "GET {P} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"},
	{name: "HTTP/0.9", refuse: true, raw: "GET {P}\r\n\r\n"},
	{name: "HTTP/1.2", refuse: true, raw: "GET {P} HTTP/1.2\r\nHost: x\r\n\r\n"},
	{name: "HTTP/2.0", refuse: true, raw: "GET {P} HTTP/2.0\r\nHost: x\r\n\r\n"},
	{name: "HTTP/1.10", refuse: true, raw: "GET {P} HTTP/1.10\r\nHost: x\r\n\r\n"},
	{name: "HTTP/99999999999.1", refuse: true, raw: "GET {P} HTTP/99999999999.1\r\nHost: x\r\n\r\n"},
	{name: "http/1.1 in lower case", refuse: true, raw: "GET {P} http/1.1\r\nHost: x\r\n\r\n"},
	// Methods.
	{name: "unknown method", close: true, raw: "BREW {P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "lower-case method", close: true, raw: "get {P} HTTP/1.1\r\nHost: x\r\n\r\n"},
	// Connection options naming framing headers.
	{name: "Connection: Content-Length", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "Connection: Transfer-Encoding", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "Connection: Host", raw: "GET {P} HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n"},
	// Expect and Upgrade.
	{name: "Expect 100-continue with the body", forward: true, body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "Expect unknown", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "Upgrade on a POST", body: "hello",
		raw: "POST {P} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "Upgrade h2c", raw: "GET {P} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"},
	// Pipelining.
	{name: "two pipelined GETs", forward: true, reqs: 2, want: 200,
		raw: "GET {P} HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "pipelined GET after Connection: close", forward: true, want: 200,
		raw: "GET {P} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET {P}/b HTTP/1.1\r\nHost: x\r\n\r\n"},
}

// rawFor fills in a shape's placeholders.
func (s requestShape) rawFor(i int) string {
	id := fmt.Sprintf("s%02d", i)
	return strings.NewReplacer("{P}", "/d/"+id, "{S}", id).Replace(s.raw)
}

// ejectors are the requests a client could use to have percore count
// failures against its workers; each is sent a dozen times in a row after
// the table.
var ejectors = []string{
	"GET / HTTP/1.0\r\n\r\n",
	"GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
}

// TestDifferentialRequests sends every request shape once straight to a node
// worker and once through percore, and checks that percore forwards no
// ambiguous request, forwards the others at most once with their body
// intact, and never counts a client's fault against a worker.
func TestDifferentialRequests(t *testing.T) {
	needNode(t)
	if len(requestShapes) < 60 {
		t.Fatalf("%d request shapes, want at least 60", len(requestShapes))
	}
	dir := t.TempDir()
	directLog, proxyLog := filepath.Join(dir, "direct.log"), filepath.Join(dir, "percore.log")
	direct := startNodeDirect(t, diffAppJS(), "DIFF_LOG="+directLog)
	t.Setenv("DIFF_LOG", proxyLog)
	in := start(t, "--workers", "2", "--health-interval", "off", "--", "node", diffAppJS())
	in.waitLog("worker ready", 30*time.Second)

	run := func(addr string) []answer {
		out := make([]answer, len(requestShapes))
		var wg sync.WaitGroup
		slots := make(chan struct{}, 24)
		for i, s := range requestShapes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				out[i] = exchangeRaw(addr, s.rawFor(i), s.half, false, 300*time.Millisecond, 2*time.Second)
			}()
		}
		wg.Wait()
		return out
	}
	logsBefore := len(in.logs.String())
	var directs, proxied []answer
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); directs = run(direct) }()
	go func() { defer both.Done(); proxied = run(in.addr) }()
	both.Wait()
	time.Sleep(200 * time.Millisecond) // bodies that ended as the answers went out are logged
	directSeen, _ := readRecords(t, directLog)
	proxySeen, _ := readRecords(t, proxyLog)

	var rows []string
	var refusedOK, forwardedOK, failed int
	for i, s := range requestShapes {
		id := fmt.Sprintf("s%02d", i)
		d, p := directs[i], proxied[i]
		heads, ends, problems := judgeRequest(s, p, proxySeen[id])
		dHeads, _, _ := judgeRequest(s, d, directSeen[id])
		rows = append(rows, fmt.Sprintf("%-3s %-40s direct %-16s worker saw %d | percore %-16s worker saw %d (%d bodies)",
			id, truncate(s.name, 40), d, dHeads, p, heads, ends))
		for _, pr := range problems {
			t.Errorf("%s %s: %s (percore answered %s, %.80q; node straight answered %s)", id, s.name, pr, p, p.out, d)
		}
		switch {
		case len(problems) > 0:
			failed++
		case heads == 0:
			refusedOK++
		default:
			forwardedOK++
		}
	}
	t.Logf("request shapes (direct = node straight; percore = through percore; worker saw = request heads it received):\n%s",
		strings.Join(rows, "\n"))

	// The requests a client could use to take workers out of rotation,
	// each a dozen times in a row.
	for _, raw := range ejectors {
		blamed := map[int]int{}
		for range 12 {
			a := exchangeRaw(in.addr, raw, false, false, 100*time.Millisecond, 2*time.Second)
			if st := a.final(); st == 502 || st == 504 {
				blamed[st]++
			}
		}
		if len(blamed) > 0 {
			t.Errorf("percore answered %v (status: times) of 12 %.60q: a client's request answered as a worker's failure", blamed, raw)
		}
	}
	if code := status(t, "http://"+in.admin+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d after the table, want 200: clients took workers out of rotation", code)
	}
	logs := in.logs.String()[logsBefore:]
	for _, bad := range []string{"worker out of rotation", "ejecting worker"} {
		if n := strings.Count(logs, bad); n > 0 {
			t.Errorf("percore logged %q %d times: a client's fault was counted against a worker", bad, n)
		}
	}
	warns := strings.Count(logs, `"@level":"warn"`)
	if sent := len(requestShapes) + 12*len(ejectors); warns > 10 {
		t.Errorf("percore logged %d WARN lines for %d client requests: client errors must not log one WARN each", warns, sent)
	}
	t.Logf("request shapes: %d, refused as they must be or may be: %d, forwarded well framed: %d, failed: %d; WARN lines: %d",
		len(requestShapes), refusedOK, forwardedOK, failed, warns)
}

// judgeRequest checks what percore (or node) did with one shape: a, the
// answer, and recs, what the worker recorded of it. It returns the request
// heads and complete bodies the worker saw, and what is wrong.
func judgeRequest(s requestShape, a answer, recs []diffRecord) (heads, ends int, problems []string) {
	reqs := max(s.reqs, 1)
	urls := map[string]int{}
	for _, r := range recs {
		switch r.Ev {
		case "head":
			heads++
			urls[r.Method+" "+r.URL]++
		case "end":
			ends++
			want := s.body
			if strings.HasSuffix(r.URL, "/b") {
				want = ""
			}
			if r.Body != want {
				problems = append(problems, fmt.Sprintf("the worker received the body %.40q, want %.40q", r.Body, want))
			}
		}
	}
	if s.refuse && heads > 0 {
		problems = append(problems, fmt.Sprintf("an ambiguous request reached the worker (%d request heads: %v)", heads, urls))
	}
	if (s.refuse || s.close) && !a.closed {
		problems = append(problems, "the connection stayed open after a malformed request")
	}
	if s.forward && heads == 0 {
		problems = append(problems, "the request did not reach the worker")
	}
	if heads > reqs {
		problems = append(problems, fmt.Sprintf("the worker received %d requests for %d sent: %v", heads, reqs, urls))
	}
	for u, n := range urls {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("the worker received %s %d times", u, n))
		}
	}
	st := a.final()
	if st < 0 {
		st = -st
	}
	switch {
	case s.want != 0 && st != s.want:
		problems = append(problems, fmt.Sprintf("status %d, want %d", st, s.want))
	case s.want == 0 && (st == 502 || st == 504):
		problems = append(problems, fmt.Sprintf("status %d: a client's request answered as a worker's failure", st))
	}
	return heads, ends, problems
}
