package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The differential tests send the same bytes once straight to a node
// worker and once through percore, and compare. This file holds what both
// tables share: a node process the test runs itself, a raw exchange that
// records how the server answered and ended, and the recording app's log.

// startNodeDirect runs `node script` on a free loopback port with env added,
// and returns its address once it listens. The test's cleanup stops it.
func startNodeDirect(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Env = append(append(os.Environ(), "PORT=0"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	exited := make(chan struct{})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case port <- p:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	select {
	case p := <-port:
		return "127.0.0.1:" + p
	case <-exited:
		t.Fatalf("node %s exited before it listened", script)
	case <-time.After(15 * time.Second):
		t.Fatalf("node %s did not listen within 15s", script)
	}
	return ""
}

// answer is what came back on one raw connection.
type answer struct {
	out      []byte
	closed   bool  // the server ended the connection (EOF or reset)
	reset    bool  // it reset it
	statuses []int // the status of every response that parsed, in order
	bodies   []string
	headers  []http.Header
	trailing int // bytes after the last response that parsed
}

// final returns the status of the first response that is not 1xx, or 0.
func (a answer) final() int {
	for _, s := range a.statuses {
		if s >= 200 || s < 100 {
			return s
		}
	}
	return 0
}

// finals counts the responses that are not 1xx.
func (a answer) finals() int {
	n := 0
	for _, s := range a.statuses {
		if s >= 200 || s < 100 {
			n++
		}
	}
	return n
}

// String is the answer in a table cell: "400 close", "200,200 open",
// "- open" (nothing within the deadline), with "+Nb" for bytes that did not
// parse as a response.
func (a answer) String() string {
	var b strings.Builder
	if len(a.statuses) == 0 {
		b.WriteString("-")
	}
	for i, s := range a.statuses {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, s)
	}
	if a.trailing > 0 {
		fmt.Fprintf(&b, "+%db", a.trailing)
	}
	switch {
	case a.reset:
		b.WriteString(" reset")
	case a.closed:
		b.WriteString(" close")
	default:
		b.WriteString(" open")
	}
	return b.String()
}

// exchangeRaw writes raw to a new connection to addr and reads until the
// server closes it, quiet passes with no byte after the first, or limit
// passes. halfClose ends the client's side after the write. head is the
// method the responses answer (HEAD responses have no body).
func exchangeRaw(addr, raw string, halfClose bool, head bool, quiet, limit time.Duration) answer {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{closed: true, reset: true}
	}
	defer c.Close()
	began := time.Now()
	_ = c.SetWriteDeadline(began.Add(limit))
	_, werr := io.WriteString(c, raw)
	if halfClose && werr == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	var a answer
	buf := make([]byte, 32<<10)
	for {
		deadline := began.Add(limit)
		if len(a.out) > 0 {
			deadline = minTime(deadline, time.Now().Add(quiet))
		}
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		a.out = append(a.out, buf[:n]...)
		if err != nil {
			if !isTimeoutErr(err) {
				a.closed = true
				a.reset = errors.Is(err, syscall.ECONNRESET)
			}
			break
		}
	}
	a.parse(head)
	return a
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// parse reads the responses in a.out.
func (a *answer) parse(head bool) {
	r := bytes.NewReader(a.out)
	br := bufio.NewReader(r)
	var req *http.Request
	if head {
		req = &http.Request{Method: "HEAD"}
	}
	for {
		rest := r.Len() + br.Buffered()
		if rest == 0 {
			return
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			a.trailing = rest
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.statuses = append(a.statuses, resp.StatusCode)
		a.bodies = append(a.bodies, string(body))
		h := resp.Header.Clone()
		for k, v := range resp.Trailer {
			h["Trailer-"+k] = v
		}
		a.headers = append(a.headers, h)
		if err != nil {
			// A body cut short: what is left is not another response.
			a.statuses[len(a.statuses)-1] = -resp.StatusCode
			return
		}
	}
}

// diffRecord is one line of the recording app's log (testdata/diff-app.js).
type diffRecord struct {
	Ev      string   `json:"ev"`
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Version string   `json:"version"`
	Shape   string   `json:"shape"`
	Headers []string `json:"headers"`
	Body    string   `json:"body"`
	Code    string   `json:"code"`
}

// shapeRef finds the shape a request belongs to in its target.
var shapeRef = regexp.MustCompile(`/d/(s\d+)`)

// id is the shape the diffRecord belongs to, "" when none.
func (r diffRecord) id() string {
	if r.Shape != "" {
		return r.Shape
	}
	if m := shapeRef.FindStringSubmatch(r.URL); m != nil {
		return m[1]
	}
	return ""
}

// readRecords reads the recording app's log, grouped by shape.
func readRecords(t *testing.T, path string) (map[string][]diffRecord, []diffRecord) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	byShape := map[string][]diffRecord{}
	var all []diffRecord
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r diffRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		all = append(all, r)
		if id := r.id(); id != "" {
			byShape[id] = append(byShape[id], r)
		}
	}
	return byShape, all
}

func diffAppJS() string     { return filepath.Join("testdata", "diff-app.js") }
func diffAnswersJS() string { return filepath.Join("testdata", "diff-answers.js") }

// truncate shortens s for a table cell.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
