//go:build linux

package direct

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/internal/testutil"
)

// taker is a worker's end of its IPC channel as node and the preload
// speak it: it says it takes connections, acknowledges each one passed and
// serves it.
type taker struct {
	conn *net.UnixConn
	wg   sync.WaitGroup
}

// startTaker opens the channel of the worker with key, which serves the
// connections passed to it with serve.
func startTaker(t *testing.T, s *Sockets, key uint64, serve func(net.Conn)) *taker {
	t.Helper()
	return startHeldTaker(t, s, key, nil, serve)
}

// startHeldTaker is startTaker for a worker that answers for no passed
// connection until hold is closed (nil: at once), as a hung one.
func startHeldTaker(t *testing.T, s *Sockets, key uint64, hold <-chan struct{}, serve func(net.Conn)) *taker {
	t.Helper()
	f, env, err := s.Channel(key, 3)
	if err != nil || f == nil {
		t.Fatalf("Channel: %v, %v", f, err)
	}
	if !slicesContain(env, "NODE_CHANNEL_FD=3") {
		t.Fatalf("Channel env %q", env)
	}
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	k := &taker{conn: fc.(*net.UnixConn)}
	k.wg.Add(1)
	go k.run(hold, serve)
	t.Cleanup(k.stop)
	return k
}

func slicesContain(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (k *taker) run(hold <-chan struct{}, serve func(net.Conn)) {
	defer k.wg.Done()
	k.conn.Write([]byte(`{"cmd":"NODE_PERCORE_READY"}` + "\n"))
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4))
	for {
		n, oobn, _, _, err := k.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		if !bytes.Contains(buf[:max(n, 0)], []byte(`"NODE_PERCORE_CONNECTION"`)) || oobn == 0 {
			continue
		}
		msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
		fds, _ := syscall.ParseUnixRights(&msgs[0])
		if hold != nil {
			<-hold
		}
		k.conn.Write([]byte(`{"cmd":"NODE_HANDLE_ACK"}` + "\n"))
		f := os.NewFile(uintptr(fds[0]), "passed")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			defer c.Close()
			serve(c)
		}()
	}
}

func (k *taker) stop() { k.conn.Close(); k.wg.Wait() }

// tellAddr answers a connection with the address it comes from, then
// echoes what it reads, as an app would see its client.
func tellAddr(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String() + "\n"))
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			c.Write(buf[:n])
		}
		if err != nil {
			c.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect from %s: %v", src, err)
	}
	return c
}

func TestQueuedConnectionsPassOnAsThemselves(t *testing.T) {
	s, err := Open(Config{Addr: "127.0.0.1:0", Handoff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.File(1); err != nil {
		t.Fatal(err)
	}
	// No worker anywhere: connections wait in both queues.
	conns := make([]net.Conn, 16)
	srcs := make([]string, len(conns))
	for i := range conns {
		srcs[i] = "127.0.0." + string(rune('2'+i%8))
		conns[i] = dialFrom(t, srcs[i], s.Addr())
	}
	slot0, err := net.FileListener(mustFile(t, s, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer slot0.Close()
	go func() { // worker 0 serves its own socket as it serves the passed ones
		for {
			c, err := slot0.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); tellAddr(c) }()
		}
	}()
	startTaker(t, s, 1, tellAddr)
	s.Serve(1, 0, "unused") // slot 1's queue is passed to worker 0

	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			seen, err := r.ReadString('\n')
			if strings.TrimSpace(seen) != srcs[i] {
				t.Errorf("connection %d from %s: the worker saw it come from %q (%v)", i, srcs[i], seen, err)
			}
			sent := bytes.Repeat([]byte{byte(i)}, 256<<10)
			go func() {
				c.Write(sent)
				c.(*net.TCPConn).CloseWrite()
			}()
			back, err := readAll(r)
			if !bytes.Equal(back, sent) {
				t.Errorf("connection %d: %d of %d bytes came back (%v)", i, len(back), len(sent), err)
			}
		}()
	}
	wg.Wait()
	if passed, closed := s.Passed(); passed == 0 || closed != 0 {
		t.Errorf("Passed() = %d passed, %d closed; want some passed, none closed", passed, closed)
	}
}

func readAll(r *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

func TestQueuedConnectionsWaitForTheSlotsNextWorkerWhenNoneTakesThem(t *testing.T) {
	for _, handoff := range []bool{false, true} {
		var logs testutil.LockedBuffer
		log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
		s, err := Open(Config{Addr: "127.0.0.1:0", Slots: 2, Handoff: handoff, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const n = 20
		for range n { // no worker anywhere: the kernel spreads them over both queues
			c := dialFrom(t, "127.0.0.5", s.Addr())
			defer c.Close()
		}
		if handoff { // worker 0's channel, which ends: its process exited
			f, _, err := s.Channel(10, 3)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		s.Serve(10, 0, "unused")
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "wait in its queue for its next worker") {
			if time.Now().After(deadline) {
				t.Fatalf("handoff %v: the log never said the queue waits: %s", handoff, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.mu.Lock()
		covers := len(s.covers)
		s.mu.Unlock()
		if covers != 0 {
			t.Errorf("handoff %v: percore accepts on %d queues with nowhere to pass their connections", handoff, covers)
		}
		// Worker 0 serves its queue; slot 1's next worker finds the rest.
		found := 0
		for slot := range 2 {
			ln, err := net.FileListener(mustFile(t, s, slot))
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
			for {
				c, err := ln.Accept()
				if err != nil {
					break
				}
				found++
				c.Close()
			}
			ln.Close()
		}
		if found != n {
			t.Errorf("handoff %v: the workers found %d of %d connections in the queues", handoff, found, n)
		}
		if passed, closed := s.Passed(); passed != 0 || closed != 0 {
			t.Errorf("handoff %v: Passed() = %d, %d; want nothing taken from the queues", handoff, passed, closed)
		}
		if c := strings.Count(logs.String(), "wait in its queue"); c != 1 {
			t.Errorf("handoff %v: said %d times that the queue waits", handoff, c)
		}
	}
}

func TestAWorkerThatDoesNotAnswerGetsNoMoreUntilItDoes(t *testing.T) {
	s, err := Open(Config{Addr: "127.0.0.1:0", Slots: 2, Handoff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 12
	conns := make([]net.Conn, n)
	srcs := make([]string, n)
	for i := range conns { // no worker anywhere: the kernel spreads them over both queues
		srcs[i] = "127.0.1." + strconv.Itoa(10+i)
		conns[i] = dialFrom(t, srcs[i], s.Addr())
		defer conns[i].Close()
	}
	slot0, err := net.FileListener(mustFile(t, s, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer slot0.Close()
	go func() {
		for {
			c, err := slot0.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); tellAddr(c) }()
		}
	}()
	hold := make(chan struct{})
	startHeldTaker(t, s, 10, hold, tellAddr)
	s.Serve(10, 0, "unused")
	deadline := time.Now().Add(20 * time.Second)
	for s.Unanswered() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no connection passed to the hung worker was counted unanswered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if passed, closed := s.Passed(); passed != 0 || closed != 0 {
		t.Errorf("while the worker hangs: Passed() = %d, %d; want the rest left in the queue", passed, closed)
	}
	close(hold) // it recovers: it serves the connection it held, then the rest of the queue
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		seen, err := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(seen) != srcs[i] {
			t.Errorf("connection %d from %s: the worker saw %q (%v)", i, srcs[i], seen, err)
		}
	}
	if u := s.Unanswered(); u != 1 {
		t.Errorf("Unanswered() = %d, want 1", u)
	}
	if _, closed := s.Passed(); closed != 0 {
		t.Errorf("%d connections closed", closed)
	}
}
