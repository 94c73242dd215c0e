package nodeipc

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// takerJS stands for the preload: it answers every passed connection with
// the address node sees it come from, and sends what a framework sends.
const takerJS = `
const mode = process.argv[1] || '';
process.channel.unref();
process.on('internalMessage', (msg, socket) => {
  if (!msg || msg.cmd !== 'NODE_PERCORE_CONNECTION' || !socket) return;
  socket.end(socket.remoteAddress + '\n');
});
process.send('ready');                              // a framework's own
process.send({ cmd: 'NODE_OTHER', big: 'x'.repeat(100000) });
if (mode === 'handle') {                            // the app passes percore a socket
  const srv = require('net').createServer();
  srv.listen(0, '127.0.0.1', () => {
    const s = require('net').connect(srv.address().port, '127.0.0.1', () => {
      process.send('take this', s);
      // Queued behind the handle until percore acknowledges it.
      process.send({ cmd: 'NODE_PERCORE_READY' }, () => srv.close());
    });
  });
}
if (mode !== 'mute' && mode !== 'handle') process.send({ cmd: 'NODE_PERCORE_READY' });
if (mode === 'closes') setTimeout(() => process.send({ cmd: 'NODE_PERCORE_CLOSED' }), 200);
setInterval(() => {}, 1000);
`

// startNode starts node with the channel's other end as descriptor 3.
func startNode(t *testing.T, mode string) (*Channel, *exec.Cmd, <-chan struct{}) {
	t.Helper()
	changed := make(chan struct{}, 16)
	c, theirs, err := Open(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "-e", takerJS, mode)
	cmd.Env = append(os.Environ(), Env(3)...)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		c.Close()
	})
	return c, cmd, changed
}

// awaitState waits until cond holds, checking at each change.
func awaitState(t *testing.T, c *Channel, changed <-chan struct{}, cond func() bool, what string) {
	t.Helper()
	deadline := time.After(testutil.Scaled(20 * time.Second))
	for !cond() {
		select {
		case <-changed:
		case <-c.Done():
			if !cond() {
				t.Fatalf("channel ended before %s", what)
			}
		case <-deadline:
			t.Fatalf("no %s", what)
		}
	}
}

// clientFrom connects from the loopback address src to a fresh listener,
// and returns the client's end and the accepted one.
func clientFrom(t *testing.T, src string) (net.Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, accepted.(*net.TCPConn)
}

// answerOf reads the line the process answered a passed connection with.
func answerOf(t *testing.T, client net.Conn) string {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(testutil.Scaled(20 * time.Second)))
	line, err := bufio.NewReader(client).ReadString('\n')
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestPassKeepsTheClientAddress(t *testing.T) {
	c, _, changed := startNode(t, "")
	awaitState(t, c, changed, c.Passable, "ready")
	for _, src := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.9"} {
		client, conn := clientFrom(t, src)
		if err := c.Pass(conn, testutil.Scaled(10*time.Second)); err != nil {
			t.Fatalf("pass from %s: %v", src, err)
		}
		conn.Close() // the process holds its own copy
		if got := answerOf(t, client); got != src {
			t.Errorf("node saw the connection come from %q, want %q", got, src)
		}
	}
	if !c.Passable() {
		t.Error("not passable after three answered handles")
	}
}

func TestNotReadyUntilThePreloadSaysSo(t *testing.T) {
	c, _, changed := startNode(t, "mute")
	_, conn := clientFrom(t, "127.0.0.7")
	if err := c.Pass(conn, time.Second); !errors.Is(err, ErrNotReady) {
		t.Fatalf("pass before ready: %v, want ErrNotReady", err)
	}
	select { // the app's own messages change nothing
	case <-changed:
		t.Fatal("the app's messages changed the channel's state")
	case <-time.After(300 * time.Millisecond):
	}
	if c.Ready() {
		t.Error("ready without the preload's message")
	}
}

func TestClosedServerTakesNoMore(t *testing.T) {
	c, _, changed := startNode(t, "closes")
	awaitState(t, c, changed, c.Ready, "ready")
	awaitState(t, c, changed, func() bool { return !c.Ready() }, "closed server")
	_, conn := clientFrom(t, "127.0.0.7")
	if err := c.Pass(conn, time.Second); !errors.Is(err, ErrNotReady) {
		t.Fatalf("pass after the server closed: %v, want ErrNotReady", err)
	}
}

func TestDoneWhenTheProcessExits(t *testing.T) {
	c, cmd, changed := startNode(t, "")
	awaitState(t, c, changed, c.Ready, "ready")
	cmd.Process.Kill()
	select {
	case <-c.Done():
	case <-time.After(testutil.Scaled(20 * time.Second)):
		t.Fatal("channel did not end with the process")
	}
	if c.Passable() {
		t.Error("passable after the process exited")
	}
}

func TestAHungProcessStallsTheChannelUntilItAnswers(t *testing.T) {
	c, cmd, changed := startNode(t, "")
	awaitState(t, c, changed, c.Passable, "ready")
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	client, conn := clientFrom(t, "127.0.0.7")
	if err := c.Pass(conn, 300*time.Millisecond); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("pass to a stopped process: %v, want ErrNoAnswer", err)
	}
	conn.Close()
	if c.Passable() {
		t.Error("passable while a handle is unanswered")
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	awaitState(t, c, changed, c.Passable, "late answer")
	if got := answerOf(t, client); got != "127.0.0.7" {
		t.Errorf("the late connection came from %q", got)
	}
	if c.Late() != 1 {
		t.Errorf("late answers %d, want 1", c.Late())
	}
}

func TestAHandleFromTheAppIsAcknowledgedAndClosed(t *testing.T) {
	c, _, changed := startNode(t, "handle")
	// The preload's message is sent after the app's handle, and node
	// holds it back until percore acknowledged the handle.
	awaitState(t, c, changed, c.Passable, "ready after the app's handle")
	client, conn := clientFrom(t, "127.0.0.9")
	if err := c.Pass(conn, testutil.Scaled(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := answerOf(t, client); got != "127.0.0.9" {
		t.Errorf("got %q", got)
	}
}
