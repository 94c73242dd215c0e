package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// parseTestRequest parses raw as fasthttp's server would.
func parseTestRequest(t *testing.T, raw string) *fasthttp.Request {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse %.40q: %v", raw, err)
	}
	return &req
}

// testProxy is a Handler behind its Server on a loopback port, run as
// percore runs it.
type testProxy struct {
	addr  string
	h     *Handler
	pool  *Pool
	serve *Serve
	ran   chan error
	once  sync.Once
}

// startProxy runs a proxy in front of the workers at addrs. cfg.Pool is
// filled in.
func startProxy(t *testing.T, cfg Config, scfg ServerConfig, addrs ...string) *testProxy {
	t.Helper()
	pool := NewPool(UpstreamConfig{})
	cfg.Pool = pool
	h := New(cfg)
	for i, a := range addrs {
		pool.Add(uint64(i+1), i, a)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{addr: ln.Addr().String(), h: h, pool: pool, ran: make(chan error, 1),
		serve: NewServe(NewServer(h, scfg, hclog.NewNullLogger()), ln)}
	go func() { p.ran <- p.serve.Run() }()
	t.Cleanup(func() { p.stop(t, 5*time.Second) })
	return p
}

// stop stops the proxy with a stop budget of d and waits for Run.
func (p *testProxy) stop(t *testing.T, d time.Duration) {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		p.serve.Stop(ctx)
		select {
		case err := <-p.ran:
			if err != nil {
				t.Errorf("Serve.Run: %v", err)
			}
		case <-time.After(d + 5*time.Second):
			t.Error("Serve.Run did not return after Stop")
		}
	})
}

// rawRoundTrip sends raw on a new connection and reads its final response.
func rawRoundTrip(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
		resp, err = http.ReadResponse(br, nil) // an interim response; the final one follows
	}
	if err != nil {
		t.Fatalf("read response to %.40q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// recorder is a worker that records the requests it gets.
type recorder struct {
	mu   sync.Mutex // protects reqs
	reqs []recorded
}

type recorded struct {
	method, uri, proto string
	header             http.Header
	body               string
	err                error
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.RequestURI, req.Proto, req.Header.Clone(), string(b), err})
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok "+req.Method+" "+req.RequestURI)
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readHeadLines reads an HTTP head (through the empty line) from br.
func readHeadLines(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// rawServer is a worker on a raw TCP listener: serve runs for each accepted
// connection in its own goroutine. The test's cleanup closes the listener
// and every connection and waits for the goroutines.
type rawServer struct {
	ln       net.Listener
	serve    func(net.Conn)
	accepted atomic.Int32
	wg       sync.WaitGroup

	mu    sync.Mutex // protects conns
	conns []net.Conn
}

func startRawServer(t *testing.T, serve func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawServer{ln: ln, serve: serve}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *rawServer) addr() string { return r.ln.Addr().String() }

func (r *rawServer) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.serve(c)
		}()
	}
}
