package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

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
