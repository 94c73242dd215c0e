package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// answerWrite is one write of a worker's answer, delay ms after the one
// before.
type answerWrite struct {
	delay int
	data  string
}

// answerShape is one way testdata/diff-answers.js answers a request.
type answerShape struct {
	name   string
	method string // "" is GET
	proto  string // the client's HTTP version; "" is HTTP/1.1
	writes []answerWrite
	end    string // after the writes: "keep" reading requests, "close" or "reset"
	// want is the status percore must answer with; 0: any.
	want int
	// body is the body a 200 must carry whole ("" when not checked).
	body string
	// broken: the answer cannot be complete, so the client must not get a
	// complete 200 from percore (it gets 502 or 504, or sees it cut short).
	broken bool
}

// injected is a whole response a worker sends where no response is due.
// No client of percore may ever see it.
const injected = "HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nINJECTED\n"

// ok3 is a correct answer with a 3-byte body.
const ok3 = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

func now(data string) answerWrite { return answerWrite{0, data} }

func later(ms int, data string) answerWrite { return answerWrite{ms, data} }

// answerShapes is the answer table: extra bytes now and later, short and
// long bodies, bad status lines, 1xx, 101, trailers, Content-Length with
// Transfer-Encoding, and closes.
var answerShapes = []answerShape{
	{name: "extra response 50ms later", writes: []answerWrite{now(ok3), later(50, injected)}, end: "keep", want: 200, body: "ok\n"},
	{name: "extra response 5ms later", writes: []answerWrite{now(ok3), later(5, injected)}, end: "keep", want: 200, body: "ok\n"},
	{name: "extra response in the same write", writes: []answerWrite{now(ok3 + injected)}, end: "keep", want: 200, body: "ok\n"},
	{name: "extra junk in the same write", writes: []answerWrite{now(ok3 + "INJECTED junk\r\n")}, end: "keep", want: 200, body: "ok\n"},
	{name: "extra junk 30ms later", writes: []answerWrite{now(ok3), later(30, "INJECTED junk\r\n")}, end: "keep", want: 200, body: "ok\n"},
	{name: "UTF-8 body longer than its CL", writes: []answerWrite{
		now("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n\r\nh\xc3\xa9llo\n"), later(20, injected)},
		end: "keep", want: 200, body: "h\xc3\xa9llo"},
	{name: "extra response after Connection: close", writes: []answerWrite{
		now("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nok\n"), later(20, injected)}, end: "keep", want: 200, body: "ok\n"},
	{name: "CL too long, then close", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort\n")}, end: "close", broken: true},
	{name: "CL too long, then silence", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort\n")}, end: "keep", broken: true},
	{name: "chunked cut, then close", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")}, end: "close", broken: true},
	{name: "chunked without its last chunk", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")}, end: "keep", broken: true},
	{name: "status 099", writes: []answerWrite{now("HTTP/1.1 099 Odd\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", want: 502},
	{name: "status 600", writes: []answerWrite{now("HTTP/1.1 600 Odd\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", want: 502},
	{name: "status 2000", writes: []answerWrite{now("HTTP/1.1 2000 Odd\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", want: 502},
	{name: "status abc", writes: []answerWrite{now("HTTP/1.1 abc OK\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", want: 502},
	{name: "status line without reason", writes: []answerWrite{now("HTTP/1.1 200\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", body: "ok\n"},
	{name: "LF-only line endings", writes: []answerWrite{now("HTTP/1.1 200 OK\nContent-Length: 3\n\nok\n")}, end: "keep", body: "ok\n"},
	{name: "HTTP/1.0 close-delimited body", writes: []answerWrite{now("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body\n")},
		end: "close", want: 200, body: "close-delimited body\n"},
	{name: "HTTP/1.1 close-delimited body", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited body\n")},
		end: "close", want: 200, body: "close-delimited body\n"},
	{name: "unframed body, close 30ms later", writes: []answerWrite{now("HTTP/1.1 200 OK\r\n\r\nclose-delimited "), later(30, "body\n")},
		end: "close", want: 200, body: "close-delimited body\n"},
	{name: "100 then 200", writes: []answerWrite{now("HTTP/1.1 100 Continue\r\n\r\n"), later(10, ok3)}, end: "keep", want: 200, body: "ok\n"},
	{name: "102 then 200", writes: []answerWrite{now("HTTP/1.1 102 Processing\r\n\r\n" + ok3)}, end: "keep", want: 200, body: "ok\n"},
	{name: "103 then 200", writes: []answerWrite{now("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"), later(10, ok3)},
		end: "keep", want: 200, body: "ok\n"},
	{name: "three 1xx then 200", writes: []answerWrite{now("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + ok3)},
		end: "keep", want: 200, body: "ok\n"},
	{name: "unsolicited 101", writes: []answerWrite{now("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
		later(20, "INJECTED raw bytes\r\n")}, end: "keep", want: 502},
	{name: "bare 101, then a 200", writes: []answerWrite{now("HTTP/1.1 101 Switching Protocols\r\n\r\n" + injected)}, end: "keep", want: 502},
	{name: "trailer", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")},
		end: "keep", want: 200, body: "hello"},
	{name: "Set-Cookie trailer", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Set-Cookie\r\n\r\n5\r\nhello\r\n0\r\nSet-Cookie: s=1\r\n\r\n")},
		end: "keep", want: 200, body: "hello"},
	{name: "CL and TE", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
		later(20, injected)}, end: "keep", body: "hello"},
	{name: "chunk size zz", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")}, end: "keep", broken: true},
	{name: "chunk size overflow", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff5\r\nhello\r\n0\r\n\r\n")},
		end: "keep", broken: true},
	{name: "chunk longer than its size", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhelloINJECTED\r\n0\r\n\r\n")},
		end: "keep", broken: true},
	{name: "chunk extension", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n")},
		end: "keep", want: 200, body: "hello"},
	{name: "HEAD answered with a body", method: "HEAD", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED\n")}, end: "keep", want: 200},
	{name: "204 with a body", writes: []answerWrite{now("HTTP/1.1 204 No Content\r\n\r\nINJECTED\n")}, end: "keep"},
	{name: "204 with CL and a body", writes: []answerWrite{now("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\nINJECTED\n")}, end: "keep"},
	{name: "304 with CL and a body", writes: []answerWrite{now("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nINJECTED\n")}, end: "keep"},
	{name: "header folding", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", body: "ok\n"},
	{name: "NUL in a header", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 3\r\n\r\nok\n")}, end: "keep", body: "ok\n"},
	{name: "100 KB of headers", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\nContent-Length: 3\r\n\r\nok\n")},
		end: "keep", want: 502},
	{name: "two CL values", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 12\r\n\r\nok\nINJECTED\n")}, end: "keep", want: 502},
	{name: "CL -3", writes: []answerWrite{now("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nok\n")}, end: "keep", want: 502},
	{name: "garbage", writes: []answerWrite{now("INJECTED garbage\r\n\r\n")}, end: "keep", want: 502},
	{name: "close without an answer", end: "close", want: 502},
	{name: "reset without an answer", end: "reset", want: 502},
	{name: "answer, then close 30ms later", writes: []answerWrite{now(ok3), later(30, "")}, end: "close", want: 200, body: "ok\n"},
	// HTTP/1.0 clients, which cannot read the chunked coding.
	{name: "chunked in two writes, to HTTP/1.0", proto: "HTTP/1.0", writes: []answerWrite{
		now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\naaaaaaaaaa\r\n"), later(20, "2\r\nb\n\r\n0\r\n\r\n")},
		end: "keep", want: 200, body: "aaaaaaaaaab\n"},
	{name: "close-delimited body, to HTTP/1.0", proto: "HTTP/1.0", writes: []answerWrite{
		now("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclose-delimited "), later(30, "body\n")},
		end: "close", want: 200, body: "close-delimited body\n"},
	{name: "trailer, to HTTP/1.0", proto: "HTTP/1.0", writes: []answerWrite{
		now("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")},
		end: "keep", want: 200, body: "hello"},
	{name: "Content-Length, to HTTP/1.0", proto: "HTTP/1.0", writes: []answerWrite{now(ok3)}, end: "keep", want: 200, body: "ok\n"},
}

// key is the shape's name in the answers file and its request path.
func (s answerShape) key(i int) string { return fmt.Sprintf("x%02d", i) }

// latin1 turns bytes into a string of the runes 0–255 that JSON carries
// and node writes back as the same bytes with the latin1 encoding.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// writeAnswerShapes writes the table as testdata/diff-answers.js reads it.
func writeAnswerShapes(t *testing.T, path string) {
	t.Helper()
	type shapeJSON struct {
		Writes [][2]any `json:"writes"`
		End    string   `json:"end"`
	}
	m := map[string]shapeJSON{}
	for i, s := range answerShapes {
		sj := shapeJSON{Writes: [][2]any{}, End: s.end}
		for _, w := range s.writes {
			sj.Writes = append(sj.Writes, [2]any{w.delay, latin1(w.data)})
		}
		m[s.key(i)] = sj
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDifferentialAnswers has a raw worker answer in every shape of the
// answer table, once straight and once through percore; after each shape,
// requests on new client connections must get exactly their own answers.
func TestDifferentialAnswers(t *testing.T) {
	needNode(t)
	if len(answerShapes) < 30 {
		t.Fatalf("%d answer shapes, want at least 30", len(answerShapes))
	}
	shapesFile := filepath.Join(t.TempDir(), "shapes.json")
	writeAnswerShapes(t, shapesFile)
	direct := startNodeDirect(t, diffAnswersJS(), "DIFF_SHAPES="+shapesFile)
	t.Setenv("DIFF_SHAPES", shapesFile)
	launchPercore := func() *instance {
		return start(t, "--workers", "1", "--health-interval", "off", "--response-timeout", "1s",
			"--shutdown-timeout", "2s", "--", "node", diffAnswersJS())
	}
	in := launchPercore()

	requestFor := func(s answerShape, i int) (string, bool) {
		method := s.method
		if method == "" {
			method = "GET"
		}
		proto := s.proto
		if proto == "" {
			proto = "HTTP/1.1"
		}
		return method + " /a/" + s.key(i) + " " + proto + "\r\nHost: x\r\n\r\n", method == "HEAD"
	}
	// Straight to node every exchange has its own connection, so they may
	// all run at once.
	directs := make([]answer, len(answerShapes))
	var wg sync.WaitGroup
	for i, s := range answerShapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, head := requestFor(s, i)
			directs[i] = exchangeRaw(direct, raw, false, head, 150*time.Millisecond, 1500*time.Millisecond)
		}()
	}

	var rows []string
	var okShapes, failedShapes, crossed, restarts int
	proxied := make([]answer, len(answerShapes))
	problemsOf := make([][]string, len(answerShapes))
	for i, s := range answerShapes {
		raw, head := requestFor(s, i)
		p := exchangeRaw(in.addr, raw, false, head, 120*time.Millisecond, 1500*time.Millisecond)
		proxied[i] = p
		problems := judgeAnswer(s, p)
		shapeCrossed := false
		for n := range 3 {
			if n == 1 {
				time.Sleep(80 * time.Millisecond) // let late bytes arrive on the pooled connection
			}
			if pr := followUp(in.addr, s.key(i), n); pr != "" {
				problems = append(problems, pr)
				crossed++
				shapeCrossed = true
			}
		}
		problemsOf[i] = problems
		if shapeCrossed && i < len(answerShapes)-1 {
			// A pool that hands out another response goes on doing so: a
			// new percore keeps the next shapes' results their own.
			in.cleanup()
			in = launchPercore()
			restarts++
		}
	}
	wg.Wait()
	for i, s := range answerShapes {
		d, p := directs[i], proxied[i]
		rows = append(rows, fmt.Sprintf("%s %-40s direct %-14s %-24.24q | percore %-14s %-24.24q", s.key(i), truncate(s.name, 40),
			d, lastBody(d), p, lastBody(p)))
		for _, pr := range problemsOf[i] {
			t.Errorf("%s %s: %s (percore answered %s, %.100q; node straight answered %s)", s.key(i), s.name, pr, p, p.out, d)
		}
		if len(problemsOf[i]) > 0 {
			failedShapes++
		} else {
			okShapes++
		}
	}
	t.Logf("answer shapes (direct = node straight; percore = through percore; then the body):\n%s", strings.Join(rows, "\n"))
	t.Logf("answer shapes: %d, kept: %d, failed: %d; follow-up requests that got another response: %d of %d; percore restarts: %d",
		len(answerShapes), okShapes, failedShapes, crossed, 3*len(answerShapes), restarts)
}

func lastBody(a answer) string {
	if len(a.bodies) == 0 {
		return ""
	}
	return a.bodies[len(a.bodies)-1]
}

// judgeAnswer checks what a client of percore got for one answer shape.
func judgeAnswer(s answerShape, a answer) []string {
	var problems []string
	if strings.Contains(string(a.out), "INJECTED") || strings.Contains(string(a.out), "for /f/") {
		problems = append(problems, "the client got bytes the worker sent where no response was due")
	}
	if n := a.finals(); n > 1 {
		problems = append(problems, fmt.Sprintf("%d responses to one request", n))
	}
	st := a.final()
	complete := st > 0
	if st < 0 {
		st = -st
	}
	if s.want != 0 && st != s.want {
		problems = append(problems, fmt.Sprintf("status %d, want %d", st, s.want))
	}
	if s.body != "" && complete && st == 200 && lastBody(a) != s.body {
		problems = append(problems, fmt.Sprintf("body %q, want %q", lastBody(a), s.body))
	}
	if s.body != "" && st == 200 && !complete {
		problems = append(problems, fmt.Sprintf("the body was cut short; want %q", s.body))
	}
	if s.proto == "HTTP/1.0" {
		// RFC 9112 section 6.1: no chunked coding to a 1.0 recipient; a
		// body without Content-Length ends with the connection.
		if strings.Contains(strings.ToLower(string(a.out)), "\r\ntransfer-encoding:") {
			problems = append(problems, "the chunked coding sent to an HTTP/1.0 client")
		}
		if !a.closed {
			problems = append(problems, "the connection to an HTTP/1.0 client stayed open")
		}
	}
	if s.broken && complete && st == 200 {
		problems = append(problems, "a complete 200 for an answer the worker never completed")
	}
	return problems
}

// followUp sends request n of a shape's follow-ups on a new connection and
// reports what is wrong with its answer, "" when it is exactly its own.
func followUp(addr, key string, n int) string {
	path := fmt.Sprintf("/f/%s/%d", key, n)
	a := exchangeRaw(addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, false,
		250*time.Millisecond, 3*time.Second)
	want := "for " + path + "\n"
	if a.finals() != 1 || a.final() != 200 || lastBody(a) != want || a.trailing > 0 ||
		(len(a.headers) > 0 && a.headers[len(a.headers)-1].Get("X-Injected") != "") {
		return fmt.Sprintf("follow-up %s got %s %.120q, want 200 %q", path, a, a.out, want)
	}
	return ""
}
