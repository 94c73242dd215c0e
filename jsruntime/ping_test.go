//go:build linux

package jsruntime

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pingApp listens on PORT with node:http (or, with PROTO=echo, a raw TCP
// echo server), prints what PERCORE_PING it sees once it listens, logs each
// request it receives, and closes its server on GET /close.
const pingApp = `const net = require("node:net");
const http = require("node:http");
const port = /^[0-9]+$/.test(process.env.PORT) ? Number(process.env.PORT) : process.env.PORT;
const server = process.env.PROTO === "echo"
  ? net.createServer((s) => s.pipe(s))
  : http.createServer((req, res) => {
      console.log("request " + req.method + " " + req.url);
      res.end("ok");
      if (req.url === "/close") server.close();
    });
server.listen(port, () => console.log("listening; PERCORE_PING=" + process.env.PERCORE_PING));
`

// pingWrapper starts the app as npm does: a child process that inherits
// standard input, output and error, and the environment.
const pingWrapper = `const { spawn } = require("node:child_process");
const child = spawn(process.execPath, ["app.js"], { stdio: "inherit" });
child.on("exit", (code) => process.exit(code ?? 1));
`

// ping sends "ping\n" to addr (host:port, or a Unix socket's path) and
// returns the answer.
func ping(addr string) (string, error) {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// awaitPong pings addr until it answers, for up to 10 s, and returns the
// last answer and error.
func awaitPong(addr string) (string, error) {
	var answer string
	var err error
	waitFor(func() bool {
		answer, err = ping(addr)
		return err == nil
	})
	return answer, err
}

// app is a process started by startApp.
type app struct {
	lines  chan string   // its standard output, line by line
	stderr *outputSink   // its standard error
	done   chan struct{} // closed once it exited
	err    error         // its exit, once done is closed
	pid    int
}

// startApp starts w in dir in a process group of its own, with extra as
// descriptors 3 and on, and kills the group when the test ends.
func startApp(t *testing.T, w Worker, dir string, extra ...*os.File) *app {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, w.Argv[0], w.Argv[1:]...)
	cmd.Dir, cmd.Env, cmd.ExtraFiles = dir, w.Env, extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &app{lines: make(chan string, 64), stderr: &outputSink{ch: make(chan string, 64)}, done: make(chan struct{}),
		pid: cmd.Process.Pid}
	readers := make(chan struct{}, 2)
	go func() {
		defer func() { readers <- struct{}{} }()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			a.stderr.ch <- sc.Text() + "\n"
		}
	}()
	go func() {
		defer func() { readers <- struct{}{} }()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
	}()
	go func() {
		<-readers
		<-readers
		a.err = cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

// line returns the app's next line of output, failing the test when there
// is none within 20 s.
func (a *app) line(t *testing.T) string {
	t.Helper()
	select {
	case l := <-a.lines:
		return l
	case <-a.done:
		t.Fatalf("the app exited (%v) before it printed a line; stderr: %s", a.err, a.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("the app printed no line within 20 s; stderr: %s", a.stderr.String())
	}
	return ""
}

// exited waits up to 20 s for the app to exit and returns its exit code.
func (a *app) exited(t *testing.T) int {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the app did not exit within 20 s; stderr: %s", a.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(a.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// The proxy-mode preload answers pings in the process that listens on
// PORT, never in a wrapper that loads it too, out of the app's sight; it
// takes the address out of the environment, and neither keeps the process
// alive nor outlives the app's server.
func TestNodeProxyPreloadAnswersPings(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": pingApp, "wrapper.js": pingWrapper, "preload.js": string(nodeProxy)})
	for _, c := range []struct {
		name, script string
		unix         bool
	}{{"port", "app.js", false}, {"unix socket", "app.js", true}, {"through a wrapper", "wrapper.js", false}} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			pingAt := strconv.Itoa(freePort(t))
			addr := "127.0.0.1:" + pingAt
			if c.unix {
				pingAt = filepath.Join(t.TempDir(), "ping.sock")
				addr = pingAt
			}
			w, _ := prepare(t, Worker{Argv: []string{node, c.script}, Env: append(baseEnv(port), "PERCORE_PING="+pingAt)},
				Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
			a := startApp(t, w, dir)
			if got := a.line(t); got != "listening; PERCORE_PING=undefined" {
				t.Errorf("the app printed %q, want PERCORE_PING taken out of its environment", got)
			}
			if answer, err := awaitPong(addr); answer != "pong\n" || err != nil {
				t.Fatalf("ping %s: %q, %v; stderr: %s", addr, answer, err, a.stderr.String())
			}
			resp, err := httpGet("http://127.0.0.1:" + strconv.Itoa(port) + "/close")
			if err != nil {
				t.Fatal(err)
			}
			if got := a.line(t); got != "request GET /close" || resp != "ok" {
				t.Errorf("the app's first request line is %q (answer %q), want only GET /close: it saw the ping", got, resp)
			}
			if code := a.exited(t); code != 0 {
				t.Errorf("exit code %d after the server closed, want 0; stderr: %s", code, a.stderr.String())
			}
			if _, err := ping(addr); err == nil {
				t.Errorf("the ping listener at %s outlived the app", addr)
			}
		})
	}
}

// httpGet returns the body of a GET of url on a connection of its own.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// directApps are apps the --mode direct preload must refuse, by the words
// their refusal must hold.
var directApps = map[string]struct{ src, want string }{
	"cluster": {`const cluster = require("node:cluster");
if (cluster.isPrimary) cluster.fork();
else require("node:http").createServer((req, res) => res.end("ok")).listen(Number(process.env.PORT));
`, "the app forks workers with the cluster module"},
	"listens twice": {`const http = require("node:http");
http.createServer((req, res) => res.end("one")).listen(Number(process.env.PORT));
http.createServer((req, res) => res.end("two")).listen(Number(process.env.PORT));
`, "the app listens on PORT twice"},
	"hands its server over": {`if (process.argv[2] === "child") {
  process.on("message", () => {});
} else {
  const server = require("node:net").createServer();
  server.listen(Number(process.env.PORT), () => {
    const child = require("node:child_process").fork(__filename, ["child"]);
    child.send("server", server);
  });
}
`, "the app hands its server on PORT to a child process"},
}

// directWorker prepares script to run as percore's direct mode runs a
// worker, with the public socket pub as descriptor 3 and a ping address.
func directWorker(t *testing.T, node, dir, script string, pub *os.File, env ...string) (Worker, string) {
	t.Helper()
	fi, err := pub.Stat()
	if err != nil {
		t.Fatal(err)
	}
	port, health, pingPort := freePort(t), freePort(t), strconv.Itoa(freePort(t))
	env = append(baseEnv(port), env...)
	env = append(env, "PERCORE_DIRECT_FD=3", "PERCORE_DIRECT_HEALTH="+strconv.Itoa(health), "PERCORE_PING="+pingPort,
		"PERCORE_DIRECT_INODE="+strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10))
	w, _ := prepare(t, Worker{Argv: []string{node, script}, Env: env},
		Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
	return w, "127.0.0.1:" + pingPort
}

// publicSocket opens a listening socket like a direct-mode slot's and
// returns it as a file, with its address.
func publicSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, ln.Addr().String()
}

// In direct mode the process that takes the public socket answers pings,
// whatever its server speaks (here raw TCP), and what cannot work there is
// refused at once with RefusedExitCode and a message that says why.
func TestNodeDirectPreloadPingsAndRefusals(t *testing.T) {
	node := pathBinary(t, "node")
	files := map[string]string{"app.js": pingApp, "preload.js": string(nodeDirect)}
	for name, a := range directApps {
		files[strings.ReplaceAll(name, " ", "-")+".js"] = a.src
	}
	dir := writeFiles(t, files)
	t.Run("raw TCP", func(t *testing.T) {
		pub, addr := publicSocket(t)
		w, pingAddr := directWorker(t, node, dir, "app.js", pub, "PROTO=echo")
		a := startApp(t, w, dir, pub)
		if got := a.line(t); got != "listening; PERCORE_PING=undefined" {
			t.Errorf("the app printed %q, want PERCORE_PING taken out of its environment", got)
		}
		if answer, err := awaitPong(pingAddr); answer != "pong\n" || err != nil {
			t.Fatalf("ping %s: %q, %v; stderr: %s", pingAddr, answer, err, a.stderr.String())
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("echo\n"))
		if got, err := bufio.NewReader(c).ReadString('\n'); got != "echo\n" {
			t.Errorf("the public socket echoed %q, %v", got, err)
		}
	})
	for name, app := range directApps {
		t.Run(name, func(t *testing.T) {
			pub, _ := publicSocket(t)
			w, _ := directWorker(t, node, dir, strings.ReplaceAll(name, " ", "-")+".js", pub)
			a := startApp(t, w, dir, pub)
			code := a.exited(t)
			stderr := a.stderr.String()
			if code != RefusedExitCode || !strings.Contains(stderr, app.want) || !strings.Contains(stderr, "--mode proxy") {
				t.Errorf("exit code %d, stderr %q; want %d and a refusal that says %q and advises --mode proxy",
					code, stderr, RefusedExitCode, app.want)
			}
		})
	}
}

// Apps of Deno and Bun that log each request they receive and stop
// serving on GET /close.
const (
	denoServePingApp = `const server = Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: "0.0.0.0",
  onListen() { console.log("listening"); } }, (req) => {
  const path = new URL(req.url).pathname;
  console.log("request " + req.method + " " + path);
  if (path === "/close") setTimeout(() => server.shutdown(), 10);
  return new Response("ok");
});
`
	bunServePingApp = `const server = Bun.serve({ port: process.env.PORT, hostname: "0.0.0.0", fetch(req) {
  const path = new URL(req.url).pathname;
  console.log("request " + req.method + " " + path);
  if (path === "/close") setTimeout(() => server.stop(), 10);
  return new Response("ok");
} });
console.log("listening");
`
	nodeHTTPPingApp = `import http from "node:http";
const port = globalThis.Deno ? Deno.env.get("PORT") : process.env.PORT;
const server = http.createServer((req, res) => {
  console.log("request " + req.method + " " + req.url);
  res.end("ok");
  if (req.url === "/close") server.close();
});
server.listen(port, () => console.log("listening"));
`
)

// Deno's and Bun's preload answers pings out of the app's sight, and lets
// go of the ping listener when the app's server stops. A Deno app without
// the permission to listen there serves without one.
func TestServeProxyPreloadAnswersPings(t *testing.T) {
	deno, bun := toolBinary(t, "deno"), toolBinary(t, "bun")
	dir := writeFiles(t, map[string]string{"deno.js": denoServePingApp, "bun.js": bunServePingApp,
		"node.mjs": nodeHTTPPingApp, "preload.js": string(serveProxy)})
	for _, c := range []struct {
		name    string
		runtime Runtime
		argv    []string
		pings   bool
	}{
		{"deno serve", Deno(), []string{deno, "run", "--allow-env", "--allow-net", "deno.js"}, true},
		{"deno node:http", Deno(), []string{deno, "run", "--allow-env", "--allow-net", "node.mjs"}, true},
		{"deno without net for the ping", Deno(), []string{deno, "run", "--allow-env", "--allow-net=127.0.0.1:PORT", "deno.js"}, false},
		{"bun serve", Bun(), []string{bun, "bun.js"}, true},
		{"bun node:http", Bun(), []string{bun, "node.mjs"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			pingAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			argv := make([]string, len(c.argv))
			for i, a := range c.argv {
				argv[i] = strings.ReplaceAll(a, "PORT", strconv.Itoa(port))
			}
			w, _ := prepare(t, Worker{Argv: argv, Env: append(baseEnv(port), "HOME="+dir,
				"PERCORE_PING="+strings.TrimPrefix(pingAddr, "127.0.0.1:"))},
				Options{Runtime: c.runtime, Port: port, Preload: filepath.Join(dir, "preload.js")})
			a := startApp(t, w, dir)
			if got := a.line(t); got != "listening" {
				t.Fatalf("the app printed %q first; stderr: %s", got, a.stderr.String())
			}
			if c.pings {
				if answer, err := awaitPong(pingAddr); answer != "pong\n" || err != nil {
					t.Fatalf("ping %s: %q, %v; stderr: %s", pingAddr, answer, err, a.stderr.String())
				}
			} else if _, err := ping(pingAddr); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("ping without the permission: %v, want the connection refused", err)
			}
			if body, err := httpGet("http://127.0.0.1:" + strconv.Itoa(port) + "/close"); body != "ok" || err != nil {
				t.Fatalf("GET /close: %q, %v; stderr: %s", body, err, a.stderr.String())
			}
			if got := a.line(t); got != "request GET /close" {
				t.Errorf("the app's first request line is %q, want GET /close: it saw the ping", got)
			}
			if code := a.exited(t); code != 0 {
				t.Errorf("exit code %d once the server stopped, want 0; stderr: %s", code, a.stderr.String())
			}
			if _, err := ping(pingAddr); err == nil {
				t.Errorf("the ping listener at %s outlived the app", pingAddr)
			}
		})
	}
}
