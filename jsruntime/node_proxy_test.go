//go:build linux

package jsruntime

import (
	"bufio"
	"context"
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

// proxyPreloadApp serves each request's headers back, after listening on
// PORT the way the FORM variable says, as the frameworks do.
const proxyPreloadApp = `const http = require("node:http");
const port = process.env.PORT;
const server = http.createServer((req, res) => {
  const sock = res.socket;
  res.end(JSON.stringify({ headers: req.headers, raw: req.rawHeaders }));
  if (req.url === "/late") setTimeout(() => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nINJECTED\n"), 5);
});
if (process.env.APP_CLIENT_ERROR) {
  server.on("clientError", (err, socket) => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"));
}
const ready = () => console.log("listening " + JSON.stringify(server.address()));
switch (process.env.FORM) {
  case "port": server.listen(port, ready); break;
  case "any4": server.listen(Number(port), "0.0.0.0", ready); break;
  case "options": server.listen({ port: Number(port), host: "::", ipv6Only: true }, ready); break;
  case "backlog": server.listen(port, 511, ready); break;
  case "hostname": server.listen(parseInt(port, 10), process.env.HOSTNAME, ready); break;
}
`

// The proxy-mode preload makes the app listen on loopback whatever host it
// names, moves each request's token from the request to the answer, and
// closes a connection the app writes to after its answer ended.
func TestNodeProxyPreload(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": proxyPreloadApp, "preload.js": string(nodeProxy)})
	for _, form := range []string{"port", "any4", "options", "backlog", "hostname"} {
		t.Run(form, func(t *testing.T) {
			port := freePort(t)
			w, _ := prepare(t, Worker{Argv: []string{node, "app.js"},
				Env: append(baseEnv(port), "FORM="+form, "HOSTNAME=0.0.0.0", "PERCORE_WORKER_ID=3")},
				Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
			addr, stderr := startPreloaded(t, w, dir)
			if !strings.Contains(addr, `"address":"127.0.0.1"`) || !strings.Contains(addr, `"port":`+strconv.Itoa(port)) {
				t.Fatalf("the app listens on %s, want 127.0.0.1:%d", addr, port)
			}
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, body := exchange(t, c, br, "/", "0123456789abcdef")
			if got := resp.Header.Get("X-Percore-Token"); got != "0123456789abcdef" {
				t.Errorf("answer's token = %q, want the request's", got)
			}
			if strings.Contains(strings.ToLower(body), "x-percore-token") || strings.Contains(body, "0123456789abcdef") {
				t.Errorf("the app saw the token: %s", body)
			}
			// The app writes 5 ms after this answer: the connection is
			// closed instead, and the next request on it finds it gone.
			exchange(t, c, br, "/late", "1111111111111111")
			if n, err := br.ReadByte(); err == nil {
				t.Errorf("read %q after the late answer, want the connection closed", n)
			}
			if !waitFor(func() bool { return strings.Contains(stderr.String(), "worker 3 (pid") }) {
				t.Errorf("the worker's output does not name it: %q", stderr.String())
			}
		})
	}
}

// Given a Unix socket as descriptor 3, the proxy-mode preload makes the
// app's listen(PORT), in each form apps write it, listen there instead,
// while server.address() reads as loopback TCP on PORT; over that socket,
// each request's token reaches the answer and a late write closes the
// connection, as over TCP.
func TestNodeProxyPreloadOnInheritedSocket(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": proxyPreloadApp, "preload.js": string(nodeProxy)})
	for _, form := range []string{"port", "any4", "options", "backlog", "hostname"} {
		t.Run(form, func(t *testing.T) {
			port := freePort(t)
			path := filepath.Join(t.TempDir(), "w.sock")
			sock, inode := boundUnix(t, path)
			w, _ := prepare(t, Worker{Argv: []string{node, "app.js"},
				Env: append(baseEnv(port), "FORM="+form, "HOSTNAME=0.0.0.0", "PERCORE_UPSTREAM_FD=3",
					"PERCORE_UPSTREAM_INODE="+inode)},
				Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
			addr, stderr := startPreloaded(t, w, dir, sock)
			sock.Close()
			if want := `{"address":"127.0.0.1","family":"IPv4","port":` + strconv.Itoa(port) + `}`; addr != want {
				t.Errorf("server.address() = %s, want %s", addr, want)
			}
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				c.Close()
				t.Errorf("the app listens on TCP port %d too, want its Unix socket only", port)
			}
			c, err := net.DialTimeout("unix", path, 5*time.Second)
			if err != nil {
				t.Fatalf("dial the app's Unix socket: %v; stderr: %s", err, stderr.String())
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, body := exchange(t, c, br, "/", "0123456789abcdef")
			if got := resp.Header.Get("X-Percore-Token"); got != "0123456789abcdef" {
				t.Errorf("answer's token = %q, want the request's", got)
			}
			if strings.Contains(strings.ToLower(body), "x-percore-token") {
				t.Errorf("the app saw the token: %s", body)
			}
			exchange(t, c, br, "/late", "1111111111111111")
			if n, err := br.ReadByte(); err == nil {
				t.Errorf("read %q after the late answer, want the connection closed", n)
			}
		})
	}
}

// boundUnix returns a Unix stream socket bound at path, not listening, as
// percore passes it, and its inode.
func boundUnix(t *testing.T, path string) (*os.File, string) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), path), strconv.FormatUint(st.Ino, 10)
}

// Answers node gives without the app's handler (a request it cannot parse,
// an Expect it does not know) and the app's own answer to a request node
// cannot parse carry the request's token, so that percore can deliver them
// on a kept-alive connection.
func TestNodeProxyPreloadStampsNodesOwnAnswers(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": proxyPreloadApp, "preload.js": string(nodeProxy)})
	for _, c := range []struct {
		name, env, request, status string
	}{
		{"unknown method", "", "FOO / HTTP/1.1\r\nHost: a\r\n", "400"},
		{"unknown Expect", "", "GET / HTTP/1.1\r\nHost: a\r\nExpect: bogus\r\n", "417"},
		{"the app's clientError answer", "APP_CLIENT_ERROR=1", "FOO / HTTP/1.1\r\nHost: a\r\n", "400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			w, _ := prepare(t, Worker{Argv: []string{node, "app.js"}, Env: append(baseEnv(port), "FORM=port", c.env)},
				Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
			startPreloaded(t, w, dir)
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			exchange(t, conn, br, "/", "1111111111111111") // the connection carried an answer
			if _, err := io.WriteString(conn, c.request+"X-Percore-Token: 2222222222222222\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Percore-Token"); resp.Status[:3] != c.status || got != "2222222222222222" {
				t.Errorf("answer %s with token %q, want %s with the request's", resp.Status, got, c.status)
			}
		})
	}
}

// headWaysApp writes its answer's head each way an app can: whole to
// writeHead (from an object it shares between answers, or a flat array),
// field by field before an implicit head, flushed early, and after a
// 100 Continue of its own. Each body is what the app saw of the request.
const headWaysApp = `const http = require("node:http");
const shared = { "content-type": "application/json" };
const seen = (req) => JSON.stringify({ headers: req.headers, raw: req.rawHeaders, shared });
const server = http.createServer((req, res) => {
  switch (req.url) {
    case "/whole": res.writeHead(200, shared); res.end(seen(req)); break;
    case "/array": res.writeHead(200, ["content-type", "application/json"]); res.end(seen(req)); break;
    case "/implicit": res.setHeader("content-type", "application/json"); res.end(seen(req)); break;
    case "/flushed": res.flushHeaders(); res.end(seen(req)); break;
  }
});
server.on("checkContinue", (req, res) => {
  res.writeContinue();
  req.resume();
  req.on("end", () => { res.writeHead(200, shared); res.end(seen(req)); });
});
server.listen(process.env.PORT, () => console.log("listening"));
`

// Whichever way the app writes its answer's head, the answer carries the
// request's token, and neither the request the app sees nor the headers
// object it hands to writeHead holds it.
func TestNodeProxyPreloadStampsEveryWayOfWritingAHead(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": headWaysApp, "preload.js": string(nodeProxy)})
	port := freePort(t)
	w, _ := prepare(t, Worker{Argv: []string{node, "app.js"}, Env: baseEnv(port)},
		Options{Runtime: Node(), Port: port, Preload: filepath.Join(dir, "preload.js")})
	startPreloaded(t, w, dir)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i, path := range []string{"/whole", "/array", "/implicit", "/flushed", "/continue", "/whole"} {
		tok := strings.Repeat(strconv.Itoa(i), 16)
		var resp *http.Response
		var body string
		if path == "/continue" {
			resp, body = exchangeAfterContinue(t, c, br, tok)
		} else {
			resp, body = exchange(t, c, br, path, tok)
		}
		if got := resp.Header.Get("X-Percore-Token"); resp.StatusCode != 200 || got != tok {
			t.Errorf("%s: answer %s with token %q, want 200 with %q", path, resp.Status, got, tok)
		}
		if strings.Contains(strings.ToLower(body), "x-percore-token") || !strings.Contains(body, `"shared":{"content-type":"application/json"}`) {
			t.Errorf("%s: the app saw the token, or its headers object changed: %s", path, body)
		}
	}
}

// exchangeAfterContinue sends a POST with a token and Expect: 100-continue
// on c, its body once the 100 Continue came, and reads the final answer.
func exchangeAfterContinue(t *testing.T, c net.Conn, br *bufio.Reader, tok string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "POST /continue HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"+
		"X-Percore-Token: "+tok+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue first, got %v, %v", interim, err)
	}
	if _, err := io.WriteString(c, "ok"); err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, br)
}

// exchange sends GET path with a token on c and reads the answer.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, path, tok string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\nX-Percore-Token: "+tok+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, br)
}

// readAnswer reads an answer and its whole body from br.
func readAnswer(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// outputSink gathers a process's output lines, sent by the goroutine that
// reads them; String is for the test's goroutine only.
type outputSink struct {
	ch chan string
	b  strings.Builder
}

func (l *outputSink) String() string {
	for {
		select {
		case s := <-l.ch:
			l.b.WriteString(s)
		default:
			return l.b.String()
		}
	}
}

// startPreloaded starts w in dir in a process group of its own, with extra
// as its descriptors from 3 on, killed when the test ends, and returns its first line ("listening ADDR") and its
// standard error as it comes.
func startPreloaded(t *testing.T, w Worker, dir string, extra ...*os.File) (string, *outputSink) {
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
	stderr := &outputSink{ch: make(chan string, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			stderr.ch <- sc.Text() + "\n"
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the app printed no address: %v; stderr: %s", err, stderr.String())
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "listening "), stderr
}

// waitFor polls cond for up to 10 s.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// Deno's and Bun's proxy-mode preload, loaded by the flag Prepare puts on
// their command line: the server on PORT listens on loopback although the
// app names every interface, and each answer carries its request's token.
func TestServeProxyPreload(t *testing.T) {
	apps := []struct {
		runtime Runtime
		argv    []string
		file    string
		src     string
	}{
		{Deno(), []string{"deno", "run", "--allow-env", "--allow-net", "app.js"}, "app.js",
			`Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: "0.0.0.0", onListen() { console.log("listening") } },
  (req) => new Response("deno " + req.url));`},
		{Deno(), []string{"deno", "run", "--allow-env", "--allow-net", "node.js"}, "node.js",
			`import http from "node:http";
const s = http.createServer((req, res) => res.end("deno node " + JSON.stringify(req.headers)));
s.listen(Deno.env.get("PORT"), "0.0.0.0", () => console.log("listening"));`},
		{Bun(), []string{"bun", "app.js"}, "app.js",
			`Bun.serve({ port: process.env.PORT, hostname: "0.0.0.0", routes: { "/static": new Response("static") },
  fetch(req) { return new Response("bun " + req.url); } });
console.log("listening");`},
		{Bun(), []string{"bun", "node.js"}, "node.js",
			`const http = require("node:http");
http.createServer((req, res) => res.end("bun node " + JSON.stringify(req.headers))).listen(process.env.PORT, () => console.log("listening"));`},
	}
	for _, app := range apps {
		t.Run(app.runtime.Name+" "+app.file, func(t *testing.T) {
			bin := pathBinary(t, app.argv[0])
			dir := writeFiles(t, map[string]string{app.file: app.src, "preload.js": string(serveProxy)})
			port := freePort(t)
			argv := append([]string{bin}, app.argv[1:]...)
			w, _ := prepare(t, Worker{Argv: argv, Env: append(baseEnv(port), "HOME="+dir)},
				Options{Runtime: app.runtime, Port: port, Preload: filepath.Join(dir, "preload.js")})
			startPreloaded(t, w, dir)
			if got := listeningAddrs(t, port); len(got) != 1 || got[0] != "0100007F" {
				t.Errorf("port %d listens on %v (/proc/net/tcp hex), want 127.0.0.1 only", port, got)
			}
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			paths := []string{"/a", "/b"}
			if app.runtime.Name == "bun" && app.file == "app.js" {
				paths = append(paths, "/static", "/static")
			}
			for i, path := range paths {
				tok := strings.Repeat(strconv.Itoa(i), 16)
				resp, body := exchange(t, c, br, path, tok)
				if got := resp.Header.Get("X-Percore-Token"); got != tok {
					t.Errorf("GET %s: answer's token = %q, want %q (body %q)", path, got, tok, body)
				}
			}
		})
	}
}

// listeningAddrs returns the local addresses (hex, as /proc/net/tcp and
// tcp6 show them) of the sockets listening on port.
func listeningAddrs(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" {
				continue
			}
			host, p, _ := strings.Cut(f[1], ":")
			if n, err := strconv.ParseUint(p, 16, 16); err == nil && int(n) == port {
				out = append(out, host)
			}
		}
	}
	return out
}
