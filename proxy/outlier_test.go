package proxy

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestWorkerFault has fasthttp's client refuse requests it cannot write,
// so that the errors it returns for them today are the ones checked.
func TestWorkerFault(t *testing.T) {
	w := startRawServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		_ = c.Close()
	})
	client := &fasthttp.HostClient{Addr: w.addr()}
	do := func(setup func(req *fasthttp.Request)) error {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		setup(req)
		return client.Do(req, resp)
	}
	own := map[string]error{
		"no Host": do(func(req *fasthttp.Request) { req.SetRequestURI("/") }),
		"https target": do(func(req *fasthttp.Request) {
			req.SetRequestURI("https://x/")
		}),
		"body longer than its Content-Length": do(func(req *fasthttp.Request) {
			req.SetRequestURI("http://x/")
			req.Header.SetMethod("POST")
			req.SetBodyStream(strings.NewReader("hello"), 5)
			req.Header.Del("Content-Length")
		}),
	}
	for name, err := range own {
		if err == nil || workerFault(err) {
			t.Errorf("%s: workerFault(%v) = true, want an error that is not the worker's", name, err)
		}
	}
	for name, err := range map[string]error{
		"refused":  &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		"reset":    &net.OpError{Op: "read", Err: syscall.ECONNRESET},
		"closed":   fasthttp.ErrConnectionClosed,
		"timeout":  fasthttp.ErrTimeout,
		"garbage":  errors.New("error when reading response headers: cannot find whitespace"),
		"no conns": fasthttp.ErrNoFreeConns,
	} {
		if !workerFault(err) {
			t.Errorf("%s: workerFault(%v) = false, want true", name, err)
		}
	}
}
