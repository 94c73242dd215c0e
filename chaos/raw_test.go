//go:build chaos

package chaos

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// exchange is what one raw connection saw.
type exchange struct {
	status    int           // of the first answer; 0 if none
	answers   int           // status lines seen
	err       error         // the read's end, nil on a clean close
	closedIn  time.Duration // from connect to the server's close
	connected bool
}

// ended says how the connection ended, for reports.
func (e exchange) ended() string {
	switch {
	case !e.connected:
		return "not connected"
	case e.status != 0:
		return strconv.Itoa(e.status)
	case errors.Is(e.err, syscall.ECONNRESET):
		return "reset"
	case isTimeout(e.err):
		return "open"
	}
	return "closed"
}

// rawExchange connects to addr, writes raw (then half-closes when asked)
// and reads until the server closes the connection or timeout.
func rawExchange(addr, raw string, halfClose bool, timeout time.Duration) exchange {
	began := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return exchange{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(began.Add(timeout)) // the read reports a closed connection
	_, werr := io.WriteString(c, raw)
	if halfClose && werr == nil {
		_ = c.(*net.TCPConn).CloseWrite() // the read reports a closed connection
	}
	out, err := io.ReadAll(c)
	ex := exchange{connected: true, err: err, closedIn: time.Since(began)}
	ex.status, ex.answers = statusOf(out)
	return ex
}

// statusOf returns the status of the first answer in out and how many
// status lines out holds.
func statusOf(out []byte) (int, int) {
	n := bytes.Count(out, []byte("HTTP/1.1 ")) + bytes.Count(out, []byte("HTTP/1.0 "))
	if len(out) < 12 || !bytes.HasPrefix(out, []byte("HTTP/1.")) {
		return 0, n
	}
	code, _ := strconv.Atoi(string(out[9:12]))
	return code, n
}

// held is a set of connections a test keeps open.
type held struct {
	mu    sync.Mutex // protects conns
	conns []net.Conn
}

func (h *held) add(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, c)
}

func (h *held) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}
