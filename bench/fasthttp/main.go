// Command fasthttp is the bare reverse proxy fasthttp makes: its Server
// hands each request to a HostClient, round robin over the workers' Unix
// sockets, and writes back what it got. No checks, headers, retries, queue,
// balancing by load or token: the least a proxy built on fasthttp costs,
// which bench/run measures beside nginx and percore.
//
//	fasthttp LISTEN-ADDR SOCKET...
package main

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: fasthttp LISTEN-ADDR SOCKET...")
		os.Exit(2)
	}
	clients := make([]*fasthttp.HostClient, 0, len(os.Args)-2)
	for _, path := range os.Args[2:] {
		clients = append(clients, &fasthttp.HostClient{Addr: path, MaxConns: 1024,
			Dial: func(string) (net.Conn, error) { return net.Dial("unix", path) }})
	}
	var next atomic.Uint64
	handler := func(ctx *fasthttp.RequestCtx) {
		c := clients[next.Add(1)%uint64(len(clients))]
		if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("502 Bad Gateway: "+err.Error()+"\n", fasthttp.StatusBadGateway)
		}
	}
	if err := (&fasthttp.Server{Handler: handler}).ListenAndServe(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fasthttp:", err)
		os.Exit(1)
	}
}
