//go:build linux

package direct

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeWorker answers every connection on ln with its tag, as the app of one
// worker: it reads one byte, writes the tag and closes.
type fakeWorker struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startFake(t *testing.T, ln net.Listener, tag string) *fakeWorker {
	t.Helper()
	w := &fakeWorker{ln: ln}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				defer c.Close()
				answerTag(c, tag)
			}()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// answerTag reads one byte from c and answers with tag.
func answerTag(c net.Conn, tag string) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		c.Write([]byte(tag))
	}
}

func (w *fakeWorker) stop() { w.ln.Close(); w.wg.Wait() }

// slotWorker serves slot's public socket as the slot's worker would.
func slotWorker(t *testing.T, s *Sockets, slot int, tag string) *fakeWorker {
	t.Helper()
	f, err := s.File(slot)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return startFake(t, ln, tag)
}

// privateWorker is a worker's private listener, whose address the sockets
// are told; they pass nothing to it (queued connections go over a channel),
// so its tag must never answer on the public address.
func privateWorker(t *testing.T, tag string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startFake(t, ln, tag)
	return ln.Addr().String()
}

// ask connects to the public address and returns who answered.
func ask(t *testing.T, addr string) string {
	t.Helper()
	c := dialPublic(t, addr)
	return answer(t, c)
}

func dialPublic(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

func answer(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("?")); err != nil {
		t.Fatalf("write: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil || len(b) == 0 {
		t.Fatalf("read the answer: %q, %v", b, err)
	}
	return string(b)
}

func tally(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		got[ask(t, addr)]++
	}
	return got
}

// openLoopback opens sockets on a free loopback port, closed at the test's
// end.
func openLoopback(t *testing.T) *Sockets {
	t.Helper()
	s, err := Open(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNewConnectionsGoOnlyToSlotsThatServe(t *testing.T) {
	s := openLoopback(t)
	slotWorker(t, s, 0, "w0")
	w1 := slotWorker(t, s, 1, "w1")
	slotWorker(t, s, 2, "w2")
	w1.stop() // slot 1's worker is gone; its socket stays
	bridged := privateWorker(t, "bridged")
	s.Serve(10, 0, bridged)
	s.Serve(12, 2, bridged)

	got := tally(t, s.Addr(), 60)
	if got["w1"] != 0 || got["bridged"] != 0 || got["w0"] == 0 || got["w2"] == 0 {
		t.Errorf("with slot 1 unserved: answers %v, want only w0 and w2", got)
	}
	s.Unserve(12)
	if got := tally(t, s.Addr(), 30); got["w0"] != 30 {
		t.Errorf("with slot 0 alone serving: answers %v, want w0 only", got)
	}
	// Slot 1 leaves the group; Linux moves slot 2 into its place.
	s.Release(1)
	s.Serve(12, 2, bridged)
	s.Unserve(10)
	if got := tally(t, s.Addr(), 30); got["w2"] != 30 {
		t.Errorf("after slot 1 was released, with slot 2 alone serving: answers %v, want w2 only", got)
	}
}

func mustFile(t *testing.T, s *Sockets, slot int) *os.File {
	t.Helper()
	f, err := s.File(slot)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReleasingASlotResetsNoQueuedConnection(t *testing.T) {
	s, err := Open(Config{Addr: "127.0.0.1:0", Handoff: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	slotWorker(t, s, 0, "w0")
	w1 := slotWorker(t, s, 1, "w1")
	startTaker(t, s, 10, func(c net.Conn) { answerTag(c, "w0") })
	s.Serve(10, 0, "unused")
	s.Serve(11, 1, "unused")
	// Slot 1 is scaled away: its worker stops serving, stops accepting,
	// and its socket is released while clients keep connecting.
	s.Unserve(11)
	w1.stop()
	var conns []net.Conn
	for range 40 {
		conns = append(conns, dialPublic(t, s.Addr()))
	}
	s.Release(1)
	for range 40 {
		conns = append(conns, dialPublic(t, s.Addr()))
	}
	for i, c := range conns {
		if got := answer(t, c); got != "w0" {
			t.Errorf("connection %d answered %q", i, got)
		}
	}
}
