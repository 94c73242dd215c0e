//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// rawPair returns a connected pair over network ("tcp" or "unix"): the
// dialled end wrapped by withRawIO, and the accepted end as it is.
func rawPair(t testing.TB, network string) (raw net.Conn, peer net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	raw = withRawIO(c)
	if _, ok := raw.(*rawIOConn); !ok {
		t.Fatalf("withRawIO(%T) did not wrap the socket", c)
	}
	t.Cleanup(func() { raw.Close(); peer.Close() })
	return raw, peer
}

func TestRawIOMovesLargeDataBothWays(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			raw, peer := rawPair(t, network)
			// 8 MiB is far above the socket buffers: writes come back with
			// EAGAIN part-way and must wait for the reader.
			data := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(io.LimitReader(peer, int64(len(data))))
				got <- b
			}()
			n, err := raw.Write(data)
			if err != nil || n != len(data) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
			}
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("peer read %d bytes, not what was written", len(b))
			}

			go func() { _, _ = peer.Write(data) }()
			back, err := io.ReadAll(io.LimitReader(raw, int64(len(data))))
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("read back %d bytes, %v", len(back), err)
			}
		})
	}
}

func TestRawIOReadEndsWithEOFWhenThePeerCloses(t *testing.T) {
	raw, peer := rawPair(t, "tcp")
	if _, err := peer.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	b, err := io.ReadAll(raw)
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil", b, err)
	}
	if n, err := raw.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestRawIOReadHonoursTheDeadline(t *testing.T) {
	raw, _ := rawPair(t, "tcp")
	if err := raw.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := raw.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v; want a timeout", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("Read returned after %v, before the deadline", waited)
	}
}

func TestRawIOWriteToAResetPeerFails(t *testing.T) {
	raw, peer := rawPair(t, "tcp")
	// Closing with unread data makes the kernel send a reset.
	_, _ = raw.Write([]byte("unread"))
	time.Sleep(20 * time.Millisecond)
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = raw.Write([]byte("more"))
		time.Sleep(time.Millisecond)
	}
	var op *net.OpError
	if !errors.As(err, &op) || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("Write to a reset peer = %v; want an *net.OpError with EPIPE or ECONNRESET", err)
	}
}

func TestRawIOCloseWriteHalfCloses(t *testing.T) {
	raw, peer := rawPair(t, "unix")
	cw, ok := raw.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("the wrapped socket has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(peer); err != nil || len(b) != 0 {
		t.Fatalf("peer read %q, %v; want EOF", b, err)
	}
	if _, err := peer.Write([]byte("still open")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 32)
	n, err := raw.Read(b)
	if err != nil || string(b[:n]) != "still open" {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
}

// TestRawIOBufferedWriterStreams checks that a buffered writer over a
// rawIOConn passes each piece of a streamed body on as it comes, as it does
// over a net.TCPConn, instead of holding it until the buffer is full.
func TestRawIOBufferedWriterStreams(t *testing.T) {
	raw, peer := rawPair(t, "tcp")
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewWriterSize(raw, 4096).ReadFrom(pr)
		done <- err
	}()
	if _, err := pw.Write([]byte("first piece")); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 64)
	n, err := peer.Read(b)
	if err != nil || string(b[:n]) != "first piece" {
		t.Fatalf("peer read %q, %v while the stream was still open; want \"first piece\"", b[:n], err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRawIOHeldBytesLeaveWithTheNextRead checks flushBeforeRead: the bytes
// flushed last reach the peer only once the connection is read, and that
// read returns the answer to them.
func TestRawIOHeldBytesLeaveWithTheNextRead(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			raw, peer := rawPair(t, network)
			bw := bufio.NewWriterSize(raw, 4096)
			_, _ = bw.WriteString("question")
			if err := flushBeforeRead(bw, raw); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			b := make([]byte, 64)
			if n, err := peer.Read(b); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("peer read %q, %v before the connection was read; want nothing yet", b[:n], err)
			}
			answered := answerOnce(peer, []byte("question"))
			readAnswer(t, raw)
			if err := <-answered; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRawIOHeldBytesBeyondTheSocketBuffer checks a held write the socket
// takes only part of: the rest goes once the peer reads, in order, and the
// read still returns the answer.
func TestRawIOHeldBytesBeyondTheSocketBuffer(t *testing.T) {
	raw, peer := rawPair(t, "unix")
	if err := raw.(*rawIOConn).Conn.(*net.UnixConn).SetWriteBuffer(1024); err != nil {
		t.Fatal(err)
	}
	if err := peer.(*net.UnixConn).SetReadBuffer(1024); err != nil {
		t.Fatal(err)
	}
	question := bytes.Repeat([]byte("0123456789abcdef"), maxHeld/16)
	bw := bufio.NewWriterSize(raw, maxHeld)
	_, _ = bw.Write(question)
	if err := flushBeforeRead(bw, raw); err != nil {
		t.Fatal(err)
	}
	answered := answerOnce(peer, question)
	_ = raw.SetWriteDeadline(time.Now().Add(testutil.Scaled(10 * time.Second)))
	readAnswer(t, raw)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

// answerOnce reads question from peer, whole and in order, and writes
// "answer"; the channel gets nil then, or what went wrong.
func answerOnce(peer net.Conn, question []byte) <-chan error {
	answered := make(chan error, 1)
	go func() {
		got := make([]byte, len(question))
		_ = peer.SetReadDeadline(time.Now().Add(testutil.Scaled(10 * time.Second)))
		_, err := io.ReadFull(peer, got)
		if err == nil && !bytes.Equal(got, question) {
			err = errors.New("the peer got the question garbled")
		}
		if err == nil {
			_, err = peer.Write([]byte("answer"))
		}
		answered <- err
	}()
	return answered
}

// readAnswer reads "answer" from raw.
func readAnswer(t *testing.T, raw net.Conn) {
	t.Helper()
	_ = raw.SetReadDeadline(time.Now().Add(testutil.Scaled(10 * time.Second)))
	got := make([]byte, 64)
	n, err := io.ReadAtLeast(raw, got, len("answer"))
	if err != nil || string(got[:n]) != "answer" {
		t.Fatalf("read %q, %v; want \"answer\"", got[:n], err)
	}
}

// TestRawIOWriteSendsHeldBytesFirst checks that a Write after a held one,
// with no Read between, sends the held bytes first.
func TestRawIOWriteSendsHeldBytesFirst(t *testing.T) {
	raw, peer := rawPair(t, "tcp")
	bw := bufio.NewWriterSize(raw, 4096)
	_, _ = bw.WriteString("first ")
	if err := flushBeforeRead(bw, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(testutil.Scaled(10 * time.Second)))
	got := make([]byte, len("first second"))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "first second" {
		t.Fatalf("peer read %q, %v; want \"first second\"", got, err)
	}
}

func TestRawIOListenerWrapsAcceptedSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := rawIOListener{ln}
	defer rl.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	c, err := rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*rawIOConn); !ok {
		t.Fatalf("Accept returned %T, want *rawIOConn", c)
	}
}

// BenchmarkRawIO compares a ping-pong of small messages over loopback TCP
// through plain sockets and through rawIOConns.
func BenchmarkRawIO(b *testing.B) {
	for _, mode := range []string{"plain", "raw"} {
		b.Run(mode, func(b *testing.B) {
			raw, peer := rawPair(b, "tcp")
			c := raw
			if mode == "plain" {
				c = raw.(*rawIOConn).Conn
			}
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := peer.Read(buf)
					if err != nil {
						return
					}
					if _, err := peer.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			buf := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConnIdleSeesBytesAndEndWithoutConsuming(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			raw, peer := rawPair(t, network)
			if !connIdle(raw) {
				t.Fatal("a quiet connection is not idle")
			}
			if _, err := peer.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the byte to be seen", func() bool { return !connIdle(raw) })
			if connIdle(raw) {
				t.Fatal("a second check lost the byte")
			}
			b := make([]byte, 8)
			if n, err := raw.Read(b); n != 1 || b[0] != 'x' || err != nil {
				t.Fatalf("Read after the checks = %q, %v; want the byte, untouched", b[:n], err)
			}
			if !connIdle(raw) {
				t.Fatal("a drained connection is not idle")
			}
			peer.Close()
			waitFor(t, 5*time.Second, "the end of stream to be seen", func() bool { return !connIdle(raw) })
		})
	}
}

func TestConnIdleOnAClosedConnection(t *testing.T) {
	raw, _ := rawPair(t, "tcp")
	raw.Close()
	if connIdle(raw) {
		t.Fatal("a closed connection is idle")
	}
}

// TestRawIOLazyDeadlines checks the read deadlines the poller gets only when
// a read waits: each must hold as a plain socket's would, within a
// thirty-second of its length late and never early.
func TestRawIOLazyDeadlines(t *testing.T) {
	isTimeoutErr := func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
	t.Run("a waiting read ends at its deadline, not before", func(t *testing.T) {
		raw, _ := rawPair(t, "tcp")
		const d = 100 * time.Millisecond
		start := time.Now()
		_ = raw.SetReadDeadline(start.Add(d))
		var b [1]byte
		_, err := raw.Read(b[:])
		if !isTimeoutErr(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
		if took := time.Since(start); took < d {
			t.Errorf("timed out after %v, before the %v deadline", took, d)
		}
	})
	t.Run("a deadline that passed while no read waited does not cut a later one", func(t *testing.T) {
		raw, peer := rawPair(t, "tcp")
		var b [1]byte
		_ = raw.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := peer.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond) // the first deadline passes with no read waiting
		_ = raw.SetReadDeadline(time.Now().Add(testutil.Scaled(5 * time.Second)))
		go func() {
			time.Sleep(30 * time.Millisecond)
			_, _ = peer.Write([]byte("b"))
		}()
		if _, err := raw.Read(b[:]); err != nil || b[0] != 'b' {
			t.Fatalf("read %q, %v: the later deadline must hold", b[:], err)
		}
	})
	t.Run("a deadline in the past fails a read even with bytes waiting", func(t *testing.T) {
		raw, peer := rawPair(t, "tcp")
		var b [1]byte
		_ = raw.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := peer.Write([]byte("ab")); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		_ = raw.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := raw.Read(b[:]); !isTimeoutErr(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
	})
	t.Run("a new deadline reaches a read already waiting", func(t *testing.T) {
		raw, _ := rawPair(t, "tcp")
		_ = raw.SetReadDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			var b [1]byte
			_, err := raw.Read(b[:])
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the read wait (it ends either way)
		_ = raw.SetReadDeadline(time.Now())
		select {
		case err := <-done:
			if !isTimeoutErr(err) {
				t.Fatalf("read: %v, want a timeout", err)
			}
		case <-time.After(testutil.Scaled(5 * time.Second)):
			t.Fatal("the waiting read did not see its new deadline")
		}
	})
	t.Run("a deadline removed while none was armed lets a read wait", func(t *testing.T) {
		raw, peer := rawPair(t, "tcp")
		_ = raw.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_ = raw.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(50 * time.Millisecond)
			_, _ = peer.Write([]byte("c"))
		}()
		var b [1]byte
		if _, err := raw.Read(b[:]); err != nil {
			t.Fatalf("read: %v", err)
		}
	})
}

// BenchmarkReadDeadlines measures the read deadlines the upstream
// transport sets around each response header (the response timeout, then
// none), with the check a read makes before it starts: handed to the
// poller on every call as a plain socket does ("poller"), or only when a
// read waits and the armed one is not close enough ("lazy"). The reads
// themselves are left out: their system calls are the same either way.
func BenchmarkReadDeadlines(b *testing.B) {
	for _, mode := range []string{"poller", "lazy"} {
		b.Run(mode, func(b *testing.B) {
			raw, _ := rawPair(b, "tcp")
			c := raw.(*rawIOConn)
			setDeadline := c.SetReadDeadline
			if mode == "poller" {
				setDeadline = c.Conn.SetReadDeadline
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := setDeadline(time.Now().Add(DefaultResponseTimeout)); err != nil {
					b.Fatal(err)
				}
				if err := c.armIfStale(false); err != nil { // as a read starts
					b.Fatal(err)
				}
				if err := setDeadline(time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
