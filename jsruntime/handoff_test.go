package jsruntime

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/nodeipc"
)

// handoffApp is an app with the habits that meet an IPC channel: it says
// 'ready' with process.send (as for PM2), listens for 'message', stops
// itself on SIGTERM with server.close() and counts on the process ending
// then, and reports what a child process of its own inherits.
const handoffApp = `const http = require('http');
const { spawnSync } = require('child_process');
const server = http.createServer((req, res) => res.end(req.socket.remoteAddress));
process.on('message', () => {});
server.listen(process.env.PORT, () => {
  if (process.send) process.send('ready');
  const child = spawnSync(process.execPath, ['-e',
    'console.log(String(process.env.NODE_CHANNEL_FD), typeof process.send)'], { encoding: 'utf8' });
  console.log('child: ' + child.stdout.trim());
  console.log('listening; connected=' + process.connected);
});
process.on('SIGTERM', () => {
  console.log('term');
  server.close(() => console.log('closed'));
});
`

// The direct preload takes the connections percore passes over the IPC
// channel and hands them to the app's server as its own: the app sees the
// client's address; the app's 'ready' message is ignored; the channel
// keeps the process alive neither while the server has a connection nor
// after (the app's 'message' listener notwithstanding); and the app's
// child processes inherit no channel.
func TestNodeDirectPreloadTakesPassedConnections(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"app.js": handoffApp, "preload.js": string(nodeDirect)})
	changed := make(chan struct{}, 16)
	ch, theirs, err := nodeipc.Open(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	pub, _ := publicSocket(t)
	w, _ := directWorker(t, node, dir, "app.js", pub, nodeipc.Env(4)...)
	a := startApp(t, w, dir, pub, theirs)
	theirs.Close()
	if got := a.line(t); got != "child: undefined undefined" {
		t.Errorf("a child process of the app saw %q, want no channel", got)
	}
	if got := a.line(t); got != "listening; connected=true" {
		t.Errorf("the app printed %q", got)
	}
	deadline := time.After(20 * time.Second)
	for !ch.Passable() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the preload never said it takes connections; stderr: %s", a.stderr.String())
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Pass(conn.(*net.TCPConn), 10*time.Second); err != nil {
		t.Fatalf("pass: %v; stderr: %s", err, a.stderr.String())
	}
	conn.Close()
	r := bufio.NewReader(client)
	client.SetDeadline(time.Now().Add(20 * time.Second))
	if got := getOn(t, client, r); got != "127.0.0.7" {
		t.Errorf("the app saw the passed connection come from %q", got)
	}

	// The app stops itself: its server, which counts the passed
	// connection as its own, closes only once that connection is done:
	// idle, it is closed after the preload's second of grace, and the
	// app's own handler runs only then.
	term := time.Now()
	if err := syscall.Kill(a.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := a.line(t); got != "term" {
		t.Fatalf("the app printed %q, want term", got)
	}
	select { // not a.line, which may see the exit first
	case l := <-a.lines:
		if l != "closed" {
			t.Errorf("the app printed %q, want closed", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the app's server never closed; stderr %s", a.stderr.String())
	}
	if waited := time.Since(term); waited < 500*time.Millisecond {
		t.Errorf("the server closed %s after the stop, before its passed connection was done", waited)
	}
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the idle passed connection after the stop: read %d, %v; want it closed", n, err)
	}
	if code := a.exited(t); code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, a.stderr.String())
	}
}

// getOn sends GET / on c and returns the answer's body.
func getOn(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
