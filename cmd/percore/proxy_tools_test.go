package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func proxyAppJS() string { return filepath.Join("testdata", "proxy-app.js") }

// workerStats is what the proxy test app reports on /count.
type workerStats struct {
	Requests     int `json:"requests"`
	ClientErrors int `json:"clientErrors"`
	Open         int `json:"open"`
	Aborted      int `json:"aborted"`
	Sockets      int `json:"sockets"`
}

func stats(t *testing.T, in *instance) workerStats {
	t.Helper()
	var s workerStats
	getJSON(t, "http://"+in.addr+"/count", &s)
	return s
}

// rawExchange writes raw to a new connection to addr and returns what comes
// back until the server closes the connection or the timeout ends.
func rawExchange(t *testing.T, addr, raw string, timeout time.Duration) string {
	t.Helper()
	return rawExchangeClose(t, addr, raw, false, timeout)
}

// rawExchangeClose is rawExchange that may end the client's side of the
// connection (a half-close) after writing.
func rawExchangeClose(t *testing.T, addr, raw string, halfClose bool, timeout time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// statusOf returns the status code of the first response in s, 0 when none.
func statusOf(s string) int {
	if !strings.HasPrefix(s, "HTTP/1.1 ") || len(s) < 12 {
		return 0
	}
	n, _ := strconv.Atoi(s[9:12])
	return n
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, errors.New("no VmRSS")
}

// rssWatch samples a process's RSS until stop is closed and reports the peak.
func rssWatch(pid int, stop <-chan struct{}) <-chan int {
	peak := make(chan int, 1)
	go func() {
		max := 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := rssKiB(pid); err == nil && kb > max {
				max = kb
			}
			select {
			case <-stop:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	return peak
}

// wsConn is the client side of a WebSocket (RFC 6455), written out so the
// test depends on nothing but the standard library.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
}

// dialWS opens a WebSocket to path through addr. extra is added to the
// handshake's header block as it is (lines ending in CRLF). It returns the
// handshake response; on a 101 the connection is ready.
func dialWS(t *testing.T, addr, path, extra string) (*wsConn, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, resp, err := handshakeWS(c, addr, path, extra)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ws, resp
}

func handshakeWS(c net.Conn, addr, path, extra string) (*wsConn, *http.Response, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
	if !strings.Contains(strings.ToLower(extra), "connection:") {
		req = strings.Replace(req, "Upgrade: websocket\r\n", "Upgrade: websocket\r\nConnection: Upgrade\r\n", 1)
	}
	if _, err := io.WriteString(c, req); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read handshake response: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	if resp.StatusCode == http.StatusSwitchingProtocols {
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			return nil, nil, fmt.Errorf("Sec-WebSocket-Accept = %q, want %q", got, want)
		}
	}
	return &wsConn{c: c, br: br}, resp, nil
}

// send writes one masked frame, as a client must.
func (w *wsConn) send(opcode byte, payload []byte) error {
	var hdr [14]byte
	hdr[0] = 0x80 | opcode
	n := 2
	switch l := len(payload); {
	case l < 126:
		hdr[1] = 0x80 | byte(l)
	case l < 1<<16:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	copy(hdr[n:], mask[:])
	n += 4
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i&3]
	}
	_, err := w.c.Write(append(hdr[:n:n], masked...))
	return err
}

// recv reads one frame within timeout.
func (w *wsConn) recv(timeout time.Duration) (byte, []byte, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	defer w.c.SetReadDeadline(time.Time{})
	var hdr [2]byte
	if _, err := io.ReadFull(w.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	l := uint64(hdr[1] & 0x7f)
	switch l {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		l = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		l = binary.BigEndian.Uint64(b[:])
	}
	payload := make([]byte, l)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}

// roundTrip sends several messages of different sizes and checks each echo.
func (w *wsConn) roundTrip(t *testing.T) {
	t.Helper()
	for i, size := range []int{5, 125, 126, 4000, 70000} {
		msg := bytes.Repeat([]byte{byte('a' + i)}, size)
		opcode := byte(1)
		if i%2 == 1 {
			opcode = 2
		}
		if err := w.send(opcode, msg); err != nil {
			t.Fatalf("send message %d: %v", i, err)
		}
		op, got, err := w.recv(5 * time.Second)
		if err != nil {
			t.Fatalf("receive echo %d: %v", i, err)
		}
		if op != opcode || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: opcode %d, %d bytes; want opcode %d, %d bytes", i, op, len(got), opcode, size)
		}
	}
}
