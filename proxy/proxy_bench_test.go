package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// tinyWorker answers every request head it reads with resp, allocating
// nothing per request, so -benchmem counts the proxy alone.
func tinyWorker(b *testing.B, resp string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // protects conns
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				out := []byte(resp)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) == 2 {
							break
						}
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

const tinyResponse = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n" +
	"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello world\n"

// BenchmarkServeHTTPAsPercore is one request through the Handler wired as
// percore wires it: New (with the default response timeout, the per-worker
// limit when asked, the access log off) before the worker is added.
func BenchmarkServeHTTPAsPercore(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{}},
		{"no-response-timeout", Config{ResponseTimeout: -1}},
		{"max-inflight", Config{MaxInFlight: 64}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pool := NewPool(UpstreamConfig{})
			bc.cfg.Pool = pool
			h := New(bc.cfg)
			pool.Add(1, 0, tinyWorker(b, tinyResponse))
			var tmpl fasthttp.Request
			if err := tmpl.Read(bufio.NewReader(strings.NewReader("GET /api HTTP/1.1\r\nHost: app.test\r\n\r\n"))); err != nil {
				b.Fatal(err)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&tmpl, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			w := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&ctx.Request)
				h.ServeHTTP(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
				if err := ctx.Response.Write(w); err != nil {
					b.Fatal(err)
				}
				ctx.Response.Reset()
			}
		})
	}
}

// BenchmarkCheckRequest measures the smuggling checks on a browser's header.
func BenchmarkCheckRequest(b *testing.B) {
	raw := "GET /api/items?page=2 HTTP/1.1\r\nHost: app.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: application/json, text/plain, */*\r\nAccept-Language: en-GB,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\nReferer: https://app.example.com/items\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\nConnection: keep-alive\r\n\r\n"
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(bytes.NewBufferString(raw))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, _ := checkRequest(&h); s != 0 {
			b.Fatal(s)
		}
	}
}

// BenchmarkTunnel measures bytes through an open tunnel, both ways.
func BenchmarkTunnel(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := readHeadLines(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	}()
	pool := NewPool(UpstreamConfig{})
	h := New(Config{Pool: pool})
	pool.Add(1, 0, ln.Addr().String())
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve := NewServe(NewServer(h, ServerConfig{}, hclog.NewNullLogger()), pln)
	ran := make(chan error, 1)
	go func() { ran <- serve.Run() }()
	c, err := net.Dial("tcp", pln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	io.WriteString(c, wsRequest)
	br := bufio.NewReader(c)
	if head, err := readHeadLines(br); err != nil || !strings.HasPrefix(head, "HTTP/1.1 101") {
		b.Fatalf("handshake: %q %v", head, err)
	}
	msg := bytes.Repeat([]byte("x"), 16<<10)
	echo := make([]byte, len(msg))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, echo); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serve.Stop(ctx)
	<-ran
}
