package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func TestRetryable(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name   string
		method string
		body   string
		err    error
		want   bool
	}{
		{"dial error, POST", "POST", "x", dialErr, true},
		{"dial error, GET", "GET", "", dialErr, true},
		{"closed before response, GET", "GET", "", fasthttp.ErrConnectionClosed, true},
		{"reset, GET", "GET", "", syscall.ECONNRESET, true},
		{"EOF, DELETE", "DELETE", "", io.EOF, true},
		{"closed before response, POST", "POST", "", fasthttp.ErrConnectionClosed, false},
		{"closed, PUT with body", "PUT", "data", fasthttp.ErrConnectionClosed, false},
		{"timeout, GET", "GET", "", fasthttp.ErrTimeout, false},
		{"other, GET", "GET", "", errors.New("malformed response"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.SetMethod(c.method)
			if c.body != "" {
				req.SetBodyString(c.body)
			}
			if got := retryable(c.err, &req); got != c.want {
				t.Errorf("retryable = %v, want %v", got, c.want)
			}
		})
	}
}

// dyingWorker is a worker that takes one request and dies without
// answering, as a process killed mid-request: it accepts no other
// connection, and its sockets close one after the other. Linux releases a
// dying process's files in the reverse order of their descriptors, so the
// request's connection usually closes a moment before the listener (a
// connection made meanwhile waits in the listener's queue, and is reset);
// listenerFirst is the other order. died is closed once both are.
type dyingWorker struct {
	ln   net.Listener
	died chan struct{}
}

func startDyingWorker(t *testing.T, listenerFirst bool) *dyingWorker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &dyingWorker{ln: ln, died: make(chan struct{})}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = readHeadLines(bufio.NewReader(c))
		if listenerFirst {
			_ = ln.Close()
			_ = c.Close()
		} else {
			_ = c.Close()
			time.Sleep(20 * time.Millisecond) // the exit's other files
			_ = ln.Close()
		}
		close(w.died)
	}()
	return w
}

func (w *dyingWorker) addr() string { return w.ln.Addr().String() }

// replaceAfter drains the dying worker's key 1 and adds a worker at addr in
// its slot, 300ms after it died, as the supervisor does once it has seen the
// exit and started the replacement.
func replaceAfter(t *testing.T, p *testProxy, w *dyingWorker, addr string) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		select {
		case <-w.died:
		case <-time.After(10 * time.Second):
			return
		}
		time.Sleep(300 * time.Millisecond) // the supervisor's delay, not a wait for an event
		p.pool.Drain(1)
		p.pool.Add(2, 0, addr)
	}()
}

// TestRequestWaitsForTheReplacementOfItsDeadWorker is a lone worker dying
// with a GET in flight, before the supervisor has seen it go: the GET,
// which may be sent again, waits for the replacement and gets its answer;
// a POST whose body went out may have been processed and gets 502.
func TestRequestWaitsForTheReplacementOfItsDeadWorker(t *testing.T) {
	rec, next := startRecorder(t)
	for _, listenerFirst := range []bool{false, true} {
		w := startDyingWorker(t, listenerFirst)
		p := startProxy(t, Config{WorkerWait: 5 * time.Second}, ServerConfig{}, w.addr())
		replaceAfter(t, p, w, next)
		resp, body := rawRoundTrip(t, p.addr, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 200 || body != "ok GET /wait" {
			t.Errorf("GET whose worker died (listener closed first: %v): %d %q, want 200 from the replacement",
				listenerFirst, resp.StatusCode, body)
		}

		w = startDyingWorker(t, listenerFirst)
		p = startProxy(t, Config{WorkerWait: 5 * time.Second}, ServerConfig{}, w.addr())
		replaceAfter(t, p, w, next)
		resp, _ = rawRoundTrip(t, p.addr, "POST /sent HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("POST whose worker died with its body (listener closed first: %v): %d, want 502",
				listenerFirst, resp.StatusCode)
		}
	}
	for _, r := range rec.all() {
		if r.method == "POST" {
			t.Errorf("the replacement got the POST %s, which the dead worker may have processed", r.uri)
		}
	}
}

// TestWorkerThatClosesWithoutAnswerFailsFast is a live worker that closes
// each connection without answering: it still listens, so a GET is not held
// for a replacement that will not come, and gets 502 at once.
func TestWorkerThatClosesWithoutAnswerFailsFast(t *testing.T) {
	w := startRawServer(t, func(c net.Conn) {
		_, _ = readHeadLines(bufio.NewReader(c))
		_ = c.Close()
	})
	p := startProxy(t, Config{WorkerWait: 5 * time.Second}, ServerConfig{}, w.addr())
	start := time.Now()
	resp, _ := rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET to a worker that closes without answering: %d, want 502", resp.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("502 after %s, want it at once, not after a wait for another worker", d)
	}
	if p.pool.Ready() != 1 {
		t.Errorf("Ready = %d, want the live worker still routed", p.pool.Ready())
	}
}
