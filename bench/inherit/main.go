// Command inherit shows which servers of Deno and Bun serve a listening
// socket they inherit, as --mode direct needs, and what becomes of the
// connections queued on a Bun.serve reusePort socket when its worker is
// killed. It documents docs/direct-mode.md's table of runtimes; run it
// again when a runtime is upgraded:
//
//	go run ./bench/inherit [-deno PATH] [-bun PATH]
//
// Each probe passes a SO_REUSEPORT socket listening on 127.0.0.1 as
// descriptor 3 to a short script, then sends GET / to that socket: "yes"
// means the script's server answered it there. It is not a test: nothing
// here runs in CI.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// probe is one way a runtime might serve descriptor 3.
type probe struct {
	runtime, api, script string
}

// answer is the JSON-free body every probe's server answers with.
const answer = `"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"`

var probes = []probe{
	{"bun", "Bun.serve({fd: 3})", `const s = Bun.serve({ fd: 3, port: 0, fetch: () => new Response("ok\n") });
console.log("listening on " + s.hostname + ":" + s.port);`},
	{"bun", "Bun.listen({fd: 3})", `Bun.listen({ fd: 3, socket: { data(s) { s.write(` + answer + `); s.end(); } } });
console.log("listening");`},
	{"bun", "node:net listen({fd: 3})", `const s = require("node:net").createServer((c) => c.end(` + answer + `));
s.listen({ fd: 3 }, () => console.log("listening on " + JSON.stringify(s.address())));`},
	{"bun", "node:http listen({fd: 3})", `const s = require("node:http").createServer((q, r) => r.end("ok\n"));
s.listen({ fd: 3 }, () => console.log("listening on " + JSON.stringify(s.address())));`},
	{"deno", "Deno.serve({fd: 3})", `Deno.serve({ fd: 3, port: 0, onListen: (a) => console.log("listening on " + JSON.stringify(a)) },
  () => new Response("ok\n"));`},
	{"deno", "Deno.listen({fd: 3})", `const l = Deno.listen({ fd: 3, port: 0 });
console.log("listening on " + JSON.stringify(l.addr));
for await (const c of l) { await c.write(new TextEncoder().encode(` + answer + `)); c.close(); }`},
	{"deno", "node:net listen({fd: 3})", `import net from "node:net";
const s = net.createServer((c) => c.end(` + answer + `));
s.listen({ fd: 3 }, () => console.log("listening on " + JSON.stringify(s.address())));`},
	{"deno", "node:http listen({fd: 3})", `import http from "node:http";
const s = http.createServer((q, r) => r.end("ok\n"));
s.listen({ fd: 3 }, () => console.log("listening on " + JSON.stringify(s.address())));`},
}

func main() {
	deno := flag.String("deno", "deno", "the deno binary")
	bun := flag.String("bun", "bun", "the bun binary")
	flag.Parse()
	dir, err := os.MkdirTemp("", "inherit-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{"deno": *deno, "bun": *bun}
	for _, rt := range []string{"bun", "deno"} {
		out, err := exec.Command(bins[rt], "--version").Output()
		if err != nil {
			fail(fmt.Errorf("%s --version: %w", rt, err))
		}
		fmt.Printf("%s %s\n", rt, strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
	}
	for i, p := range probes {
		script := filepath.Join(dir, fmt.Sprintf("probe%d.mjs", i))
		if p.runtime == "bun" {
			script = filepath.Join(dir, fmt.Sprintf("probe%d.cjs", i))
		}
		if err := os.WriteFile(script, []byte(p.script), 0o644); err != nil {
			fail(err)
		}
		args := []string{script}
		if p.runtime == "deno" {
			args = []string{"run", "-A", script}
		}
		served, said := serves(bins[p.runtime], args)
		fmt.Printf("%-5s %-30s %-3s  %s\n", p.runtime, p.api, served, said)
	}
	migrate, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	fmt.Printf("\nnet.ipv4.tcp_migrate_req = %s", migrate)
	if err := killQueued(*bun, dir); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "inherit:", err)
	os.Exit(1)
}

// reusePortListener listens on 127.0.0.1:port with SO_REUSEPORT, as
// percore's slot sockets do.
func reusePortListener(port int) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// serves runs a probe with a listening socket as descriptor 3 and reports
// whether GET / on that socket was answered, with what the script printed.
func serves(bin string, args []string) (string, string) {
	ln, err := reusePortListener(0)
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		fail(err)
	}
	defer f.Close()
	addr := ln.Addr().String()
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "PUBLIC_PORT="+strings.Split(addr, ":")[1], "NO_COLOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	var said string
	select {
	case said = <-first:
	case <-time.After(10 * time.Second):
		said = "(printed nothing in 10 s)"
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "no", said + "; GET / on the inherited socket: " + err.Error()
	}
	resp.Body.Close()
	return "yes", said
}

// blockedBun serves PUBLIC_PORT with Bun.serve and reusePort, then blocks
// its event loop, so that the connections the kernel gives its socket stay
// queued there.
const blockedBun = `Bun.serve({ port: Number(process.env.PUBLIC_PORT), hostname: "127.0.0.1", reusePort: true,
  fetch: () => new Response("ok\\n") });
console.log("blocked");
const end = Date.now() + 30000;
while (Date.now() < end) {}
`

// killQueued shows what a killed Bun.serve reusePort worker does to the
// connections queued on its socket: the Bun worker and a socket standing
// for percore's share a SO_REUSEPORT group; 64 connections are spread over
// both by the kernel; the worker is SIGKILLed with its share queued; then
// the connections queued on the kept socket are answered, and the others
// are read.
func killQueued(bun, dir string) error {
	kept, err := reusePortListener(0)
	if err != nil {
		return err
	}
	defer kept.Close()
	port := kept.Addr().(*net.TCPAddr).Port
	script := filepath.Join(dir, "blocked.js")
	if err := os.WriteFile(script, []byte(blockedBun), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bun, script)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PUBLIC_PORT=%d", port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "blocked" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("bun printed %q", line)
	}
	var conns []net.Conn
	for i := 0; i < 64; i++ {
		c, err := net.Dial("tcp4", kept.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // the handshakes are done: every connection is queued
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	answered := 0
	kept.SetDeadline(time.Now().Add(time.Second))
	for {
		c, err := kept.Accept()
		if err != nil {
			break
		}
		// Read the request first: closing a socket with unread data resets it.
		r := bufio.NewReader(c)
		for {
			if line, err := r.ReadString('\n'); err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"))
		c.Close()
		answered++
	}
	ok, reset, other := 0, 0, 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		switch {
		case err == nil && strings.Contains(string(b), "ok"):
			ok++
		case errors.Is(err, syscall.ECONNRESET):
			reset++
		default:
			other++
		}
	}
	fmt.Printf("Bun.serve reusePort worker SIGKILLed with connections queued: of 64 new connections, %d were queued "+
		"on the kept socket and answered, %d were reset, %d other\n", ok, reset, other)
	if answered != ok {
		fmt.Printf("(the kept socket accepted %d)\n", answered)
	}
	return nil
}
