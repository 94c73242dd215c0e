package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// The benchmarks below measure the proxy's hot path per request. Run them
// with allocation counts, for example:
//
//	go test ./proxy -run '^$' -bench . -benchmem
//	go test ./proxy -run '^$' -bench 'ServeHTTP$' -memprofile mem.out
//	go tool pprof -sample_index=alloc_objects -top proxy.test mem.out
//
// The upstream is a loopback TCP server that answers every request with the
// bytes Node's http module sends for a small text response, so the proxy
// parses and rewrites the same headers as in front of a real Node worker.

// benchNodeResponse is what a Node 20 worker sends for res.end("hello world\n")
// with content-type and content-length set.
const benchNodeResponse = "HTTP/1.1 200 OK\r\n" +
	"content-type: text/plain\r\n" +
	"content-length: 12\r\n" +
	"Date: Thu, 26 Nov 2026 19:42:07 GMT\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"\r\n" +
	"hello world\n"

// benchWrkRequest is the request wrk sends.
const benchWrkRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

// benchBrowserRequest is a request with the headers a browser sends through an
// edge proxy, including a Connection header that names another header.
const benchBrowserRequest = "GET /api/items?page=2 HTTP/1.1\r\n" +
	"Host: app.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-GB,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://app.example.com/items\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"X-Forwarded-For: 203.0.113.7\r\n" +
	"X-Forwarded-Proto: https\r\n" +
	"Connection: keep-alive, X-Edge-Hint\r\n" +
	"X-Edge-Hint: 1\r\n" +
	"\r\n"

// benchUpstream serves resp to every request on its connections. It reads
// request heads only: the benchmarks send no bodies.
type benchUpstream struct {
	ln   net.Listener
	resp []byte
	wg   sync.WaitGroup

	mu    sync.Mutex // protects conns
	conns map[net.Conn]struct{}
}

func startBenchUpstream(tb testing.TB, resp string) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u := &benchUpstream{ln: ln, resp: []byte(resp), conns: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go u.accept()
	tb.Cleanup(u.close)
	return ln.Addr().String()
}

func (u *benchUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns[c] = struct{}{}
		u.mu.Unlock()
		u.wg.Add(1)
		go u.serveConn(c)
	}
}

func (u *benchUpstream) serveConn(c net.Conn) {
	defer u.wg.Done()
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	// The answer with the request's token in its head, as percore's
	// preload echoes it.
	status, rest, _ := bytes.Cut(u.resp, []byte("\r\n"))
	out := make([]byte, 0, len(u.resp)+64)
	var tok [64]byte
	for {
		out = out[:0]
		n, err := benchReadHead(r, &tok)
		if err != nil {
			return
		}
		out = benchAnswer(out, status, tok[:n], rest)
		// Answer only when no further request is buffered, so pipelined
		// requests get one write, as Node does.
		for r.Buffered() > 0 {
			if n, err = benchReadHead(r, &tok); err != nil {
				return
			}
			out = benchAnswer(out, status, tok[:n], rest)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// benchAnswer appends a response with the token field to out.
func benchAnswer(out, status, tok, rest []byte) []byte {
	out = append(out, status...)
	out = append(out, "\r\n"...)
	if len(tok) > 0 {
		out = append(out, TokenHeader+": "...)
		out = append(out, tok...)
		out = append(out, "\r\n"...)
	}
	return append(out, rest...)
}

func (u *benchUpstream) close() {
	_ = u.ln.Close() // ends accept
	u.mu.Lock()
	for c := range u.conns {
		_ = c.Close() // ends serveConn
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// benchReadHead reads one request head, up to its empty line, and copies
// its token into tok; it returns the token's length (0: none).
func benchReadHead(r *bufio.Reader, tok *[64]byte) (int, error) {
	n := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			return n, nil
		}
		if len(line) > len(TokenHeader)+1 && bytes.EqualFold(line[:len(TokenHeader)], []byte(TokenHeader)) && line[len(TokenHeader)] == ':' {
			n = copy(tok[:], bytes.TrimSpace(line[len(TokenHeader)+1:]))
		}
	}
}

// benchReadResponse reads one response with a Content-Length from r and returns
// its status code. It allocates nothing.
func benchReadResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, errors.New("short status line")
	}
	status := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	length := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], []byte(cl)) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(line[len(cl):])))
			if err != nil {
				return 0, err
			}
			length = n
		}
	}
	if length < 0 {
		return 0, errors.New("response without content-length")
	}
	_, err = r.Discard(length)
	return status, err
}

// newBenchHandler returns a Handler whose single worker is a canned
// upstream, as percore builds it with default settings.
func newBenchHandler(tb testing.TB, cfg Config) *Handler {
	tb.Helper()
	pool := NewPool(UpstreamConfig{})
	pool.Add(1, 0, startBenchUpstream(tb, benchNodeResponse))
	cfg.Pool = pool
	return New(cfg)
}

func benchParseRequest(tb testing.TB, raw string) *fasthttp.Request {
	tb.Helper()
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(bytes.NewBufferString(raw))); err != nil {
		tb.Fatal(err)
	}
	return req
}

var benchPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50123}

// BenchmarkServeHTTP calls the handler the way fasthttp's server does for
// one request on a kept-alive connection: a parsed request in, the response
// written out (its streamed body read and closed), then reset.
func BenchmarkServeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name, raw string
		cfg       Config
	}{
		{"wrk", benchWrkRequest, Config{}},
		{"browser", benchBrowserRequest, Config{}},
		// A browser pinned by --affinity cookie: percore's pair is taken
		// out of its Cookie line.
		{"browser-affinity-cookie", strings.Replace(benchBrowserRequest, "; theme=dark", "; percore_worker=0; theme=dark", 1),
			Config{Affinity: Affinity{Mode: AffinityCookie}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newBenchHandler(b, bc.cfg)
			tmpl := benchParseRequest(b, bc.raw)
			var ctx fasthttp.RequestCtx
			ctx.Init(tmpl, benchPeer, nil)
			w := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&ctx.Request)
				h.ServeHTTP(&ctx)
				if code := ctx.Response.StatusCode(); code != fasthttp.StatusOK {
					b.Fatalf("status %d", code)
				}
				if err := ctx.Response.Write(w); err != nil {
					b.Fatal(err)
				}
				ctx.Response.Reset()
			}
		})
	}
}

// BenchmarkProxyLoopback runs the whole proxy as percore does, a fasthttp
// server with the Handler in front of a canned upstream, and 64 concurrent
// keep-alive clients, like wrk -c64. The clients and the upstream allocate
// nothing per request, so allocs/op are the proxy's; ns/op is wall time per
// request with every goroutine (clients and upstream too) on GOMAXPROCS.
func BenchmarkProxyLoopback(b *testing.B) {
	h := newBenchHandler(b, Config{})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(h, ServerConfig{}, hclog.NewNullLogger())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Shutdown() // Serve reports its own end
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	addr := ln.Addr().String()
	req := []byte(benchWrkRequest)

	const conns = 64
	b.SetParallelism((conns + 1) / 2) // with GOMAXPROCS=2, 64 goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		r := bufio.NewReaderSize(c, 4096)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			code, err := benchReadResponse(r)
			if err != nil {
				b.Error(err)
				return
			}
			if code != fasthttp.StatusOK {
				b.Errorf("status %d", code)
				return
			}
		}
	})
}

// BenchmarkRemoveHopByHop measures the header clean-up done on every request
// and response. Each iteration first restores the headers from a template;
// the "copy" case measures that restoring alone.
func BenchmarkRemoveHopByHop(b *testing.B) {
	var nodeResp fasthttp.Response
	if err := nodeResp.Header.Read(bufio.NewReader(bytes.NewBufferString(benchNodeResponse))); err != nil {
		b.Fatal(err)
	}
	wrk := benchParseRequest(b, benchWrkRequest)
	browser := benchParseRequest(b, benchBrowserRequest)

	b.Run("copy/request", func(b *testing.B) {
		var h fasthttp.RequestHeader
		b.ReportAllocs()
		for b.Loop() {
			browser.Header.CopyTo(&h)
		}
	})
	for _, bc := range []struct {
		name string
		tmpl *fasthttp.RequestHeader
	}{{"request/wrk", &wrk.Header}, {"request/browser", &browser.Header}} {
		b.Run(bc.name, func(b *testing.B) {
			var h fasthttp.RequestHeader
			b.ReportAllocs()
			for b.Loop() {
				bc.tmpl.CopyTo(&h)
				removeHopByHop(&h)
			}
		})
	}
	b.Run("response/node", func(b *testing.B) {
		var h fasthttp.ResponseHeader
		b.ReportAllocs()
		for b.Loop() {
			nodeResp.Header.CopyTo(&h)
			removeHopByHop(&h)
		}
	})
}

// BenchmarkSetForwarded measures the X-Forwarded-* rewrite, from an
// untrusted peer (headers replaced) and from a trusted one (chain kept).
func BenchmarkSetForwarded(b *testing.B) {
	browser := benchParseRequest(b, benchBrowserRequest)
	for _, bc := range []struct {
		name    string
		peer    net.Addr
		trusted Trusted
	}{
		{"untrusted", &net.TCPAddr{IP: net.IPv4(198, 51, 100, 9), Port: 40000}, DefaultTrusted()},
		{"trusted", benchPeer, DefaultTrusted()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var h fasthttp.RequestHeader
			b.ReportAllocs()
			for b.Loop() {
				browser.Header.CopyTo(&h)
				setForwarded(&h, bc.peer, bc.trusted)
			}
		})
	}
}

// BenchmarkPoolPick measures choosing a worker and ending its request, alone
// and with every P picking at once.
func BenchmarkPoolPick(b *testing.B) {
	for _, n := range []int{2, 8} {
		p := NewPool(UpstreamConfig{})
		for k := 1; k <= n; k++ {
			p.Add(uint64(k), k-1, "127.0.0.1:1")
		}
		b.Run("workers="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var none triedSet
				p.pick(&none).release()
			}
		})
		b.Run("workers="+strconv.Itoa(n)+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var none triedSet
					p.pick(&none).release()
				}
			})
		})
	}
}
