//go:build linux

package direct

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenBacklog opens a loopback listener with the given backlog that
// nobody accepts on, closed at the test's end.
func listenBacklog(t *testing.T, backlog int) (*os.File, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return f, "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
}

// waitQueued waits until f's accept queue holds at least n connections and
// returns what acceptQueue read.
func waitQueued(t *testing.T, f *os.File, n int) (int, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, b, err := acceptQueue(f)
		if err != nil {
			t.Fatal(err)
		}
		if q >= n || time.Now().After(deadline) {
			return q, b
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAcceptQueueOfAListenerThatDoesNotAccept(t *testing.T) {
	const backlog = 4
	f, addr := listenBacklog(t, backlog)
	if q, b, err := acceptQueue(f); err != nil || q != 0 || b != backlog {
		t.Fatalf("empty listener: queue %d of %d, %v; want 0 of %d", q, b, err, backlog)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	for range 2 {
		dial()
	}
	if q, b := waitQueued(t, f, 2); q != 2 || b != backlog {
		t.Errorf("2 connections not accepted: queue %d of %d, want 2 of %d", q, b, backlog)
	}
	// Linux queues until the queue holds more than the backlog.
	for range backlog - 1 {
		dial()
	}
	q, b := waitQueued(t, f, backlog+1)
	if q < backlog || b != backlog {
		t.Errorf("queue filled with %d connections: %d of %d, want at least %d of %d", len(conns), q, b, backlog, backlog)
	}
	var st acceptState
	st.judge(acceptSample{at: time.Now(), queued: q, backlog: b}, time.Second)
	if !st.out || !strings.Contains(st.reason, "accept queue full") {
		t.Errorf("a full queue judged: out %v, %q", st.out, st.reason)
	}
	t.Logf("%d connections, none accepted: queue %d of %d, judged %q", len(conns), q, b, st.reason)

	// Accepting drains it; reading took nothing.
	for i := range q {
		nfd, _, err := unix.Accept(int(f.Fd()))
		if err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		unix.Close(nfd)
	}
	if q, _, _ := acceptQueue(f); q != 0 {
		t.Errorf("after accepting everything read: queue %d, want 0", q)
	}
	if _, _, err := acceptQueue(os.NewFile(uintptr(connFd(t, conns[0])), "conn")); err != errNotListening {
		t.Errorf("acceptQueue of a connected socket: %v, want %v", err, errNotListening)
	}
}

// connFd returns a duplicate descriptor of c's socket.
func connFd(t *testing.T, c net.Conn) int {
	t.Helper()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestDescriptorsOfAProcess(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	before, limit, err := descriptors(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if limit != int(rl.Cur) || before < 3 {
		t.Fatalf("descriptors = %d of %d, want at least 3 of %d", before, limit, rl.Cur)
	}
	var files []*os.File
	for range 10 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	after, _, err := descriptors(os.Getpid())
	for _, f := range files {
		f.Close()
	}
	// Other goroutines of the test binary may open or close some meanwhile.
	if err != nil || after < before+8 {
		t.Errorf("10 more files open: %d descriptors, was %d (%v)", after, before, err)
	}
}

func TestOpenFilesLimit(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]int{
		"Limit                     Soft Limit           Hard Limit           Units     \n" +
			"Max open files            1024                 524288               files     \n": 1024,
		"Max open files            unlimited            unlimited            files     \n": 0,
	} {
		path := filepath.Join(dir, "limits")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := openFilesLimit(path); err != nil || got != want {
			t.Errorf("openFilesLimit(%q) = %d, %v; want %d", text, got, err, want)
		}
	}
	path := filepath.Join(dir, "none")
	os.WriteFile(path, []byte("Max processes 10 10 processes\n"), 0o644)
	if _, err := openFilesLimit(path); err == nil {
		t.Error("a file without the line gave no error")
	}
}

// A slot whose worker serves but does not accept (its queue does not
// drain) gets no new connections until it accepts again.
func TestNewConnectionsGoAroundASlotWhoseWorkerDoesNotAccept(t *testing.T) {
	s := openLoopback(t)
	if _, err := s.File(0); err != nil { // slot 0's worker never accepts
		t.Fatal(err)
	}
	slotWorker(t, s, 1, "w1")
	s.Serve(9, 0, privateWorker(t, "private0-old")) // a worker being replaced shares the slot's socket
	s.Serve(10, 0, privateWorker(t, "private0"))
	s.Serve(11, 1, privateWorker(t, "private1"))
	s.WatchAccepting(AcceptConfig{Interval: 20 * time.Millisecond, Window: 200 * time.Millisecond})

	// About half of the new connections wait in slot 0's queue.
	var waiting []net.Conn
	defer func() {
		for _, c := range waiting {
			c.Close()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(s.NotAccepting()) == 0 && time.Now().Before(deadline) && len(waiting) < 200 {
		c := dialPublic(t, s.Addr())
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		c.Write([]byte("?"))
		if b := make([]byte, 8); func() bool { n, _ := c.Read(b); return n > 0 }() {
			c.Close() // worker 1 answered
			continue
		}
		waiting = append(waiting, c)
	}
	why := s.NotAccepting()[0]
	if !strings.Contains(why, "not accepting for") {
		t.Fatalf("after %d connections waited on slot 0: NotAccepting = %v, want slot 0 not accepting", len(waiting), s.NotAccepting())
	}
	t.Logf("slot 0: %s", why)
	if got := tally(t, s.Addr(), 30); got["w1"] != 30 {
		t.Errorf("with slot 0 not accepting, 30 new connections were answered by %v, want w1 alone", got)
	}

	// Its worker accepts again: the queue drains and the slot comes back.
	slotWorker(t, s, 0, "w0")
	for len(s.NotAccepting()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.NotAccepting(); len(n) != 0 {
		t.Fatalf("slot 0 accepts again, yet NotAccepting = %v", n)
	}
	if got := tally(t, s.Addr(), 40); got["w0"] == 0 || got["w1"] == 0 {
		t.Errorf("with both accepting, 40 new connections were answered by %v, want both", got)
	}
}

// What the watch said of a worker goes with it: a slot whose worker stops
// serving is not reported as not accepting.
func TestNotAcceptingEndsWithTheWorker(t *testing.T) {
	s := openLoopback(t)
	if _, err := s.File(0); err != nil { // its worker never accepts
		t.Fatal(err)
	}
	s.Serve(10, 0, privateWorker(t, "private0"))
	s.WatchAccepting(AcceptConfig{Interval: 10 * time.Millisecond, Window: 50 * time.Millisecond})
	for range 3 {
		defer dialPublic(t, s.Addr()).Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.NotAccepting()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if why := s.NotAccepting()[0]; !strings.Contains(why, "not accepting for") {
		t.Fatalf("3 connections waiting on slot 0: NotAccepting = %v", s.NotAccepting())
	}
	s.Unserve(10)
	if n := s.NotAccepting(); len(n) != 0 {
		t.Errorf("after its worker stopped serving: NotAccepting = %v, want none", n)
	}
}
