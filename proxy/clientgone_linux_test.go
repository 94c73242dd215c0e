//go:build linux

package proxy

import (
	"net"
	"testing"
	"time"
)

func TestClientGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func(t *testing.T) (client *net.TCPConn, server net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := bareLFListener{rawIOListener{ln}}.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c.(*net.TCPConn), s
	}
	// settled waits until the server side sees what the client did.
	settled := func(s net.Conn, want bool) bool {
		for i := 0; i < 100; i++ {
			if clientGone(s) == want {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}

	c, s := pair(t)
	if clientGone(s) {
		t.Error("an open, silent client looks gone")
	}
	c.Write([]byte("GET / HTTP/1.1\r\n"))
	time.Sleep(50 * time.Millisecond) // loopback delivers at once; this only makes sure
	if clientGone(s) {
		t.Error("a client with bytes pending looks gone")
	}
	buf := make([]byte, 64)
	if n, _ := s.Read(buf); n != 16 {
		t.Errorf("the peek consumed bytes: read %d of 16", n)
	}

	c, s = pair(t)
	c.Close()
	if !settled(s, true) {
		t.Error("a closed client does not look gone")
	}

	c, s = pair(t)
	c.CloseWrite()
	if !settled(s, true) {
		t.Error("a half-closed client does not look gone")
	}
}
