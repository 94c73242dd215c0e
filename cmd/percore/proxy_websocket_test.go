package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProxyWebSocketRoundTrip(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", proxyAppJS())
	in.waitLog("worker ready", 30*time.Second)

	cases := []struct{ name, extra string }{
		{"plain", ""},
		{"Connection close and upgrade in one header", "Connection: Upgrade, close\r\n"},
		{"Connection close in a second header", "Connection: Upgrade\r\nConnection: close\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws, resp := dialWS(t, in.addr, "/ws", c.extra)
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake status %d, want 101", resp.StatusCode)
			}
			if resp.Header.Get("X-Worker") == "" {
				t.Error("the 101 lost the worker's own header")
			}
			ws.roundTrip(t)
			closeCleanly(t, ws)
		})
	}

	// A connection that first carries a plain request, then the handshake.
	t.Run("after a keep-alive request", func(t *testing.T) {
		c, err := net.Dial("tcp", in.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", in.addr)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("plain request first: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		if br.Buffered() > 0 {
			t.Fatalf("%d stray bytes after the first response", br.Buffered())
		}
		ws, resp, err := handshakeWS(c, in.addr, "/ws", "")
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake after a request: %v %v", resp, err)
		}
		ws.roundTrip(t)
		closeCleanly(t, ws)
	})

	// Neighbours that ask to close their connections do not disturb a tunnel.
	t.Run("next to Connection close requests", func(t *testing.T) {
		ws, resp := dialWS(t, in.addr, "/ws", "")
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake status %d", resp.StatusCode)
		}
		for i := 0; i < 5; i++ {
			out := rawExchange(t, in.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
			if statusOf(out) != 200 {
				t.Fatalf("Connection: close neighbour got %q", out)
			}
			ws.roundTrip(t)
		}
		closeCleanly(t, ws)
	})

	t.Run("refusal is relayed", func(t *testing.T) {
		ws, resp := dialWS(t, in.addr, "/ws-refuse", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || string(body) != "nope\n" {
			t.Fatalf("refusal = %d %q, want 403 \"nope\\n\"", resp.StatusCode, body)
		}
		// The connection stays an HTTP connection.
		fmt.Fprintf(ws.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		next, err := http.ReadResponse(ws.br, nil)
		if err != nil || next.StatusCode != 200 {
			t.Fatalf("request after a refusal: %v, %v", next, err)
		}
	})

	t.Run("another protocol than asked is refused", func(t *testing.T) {
		_, resp := dialWS(t, in.addr, "/ws-wrong", "")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("101 to h2c for a websocket request: status %d, want 502", resp.StatusCode)
		}
	})

	if s := stats(t, in); s.Sockets != 0 {
		// Every test above closed its sockets; the app must have seen it.
		deadline := time.Now().Add(3 * time.Second)
		for s.Sockets != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			s = stats(t, in)
		}
		if s.Sockets != 0 {
			t.Errorf("the app still holds %d WebSockets after every client closed", s.Sockets)
		}
	}
}

// closeCleanly runs the closing handshake: the echo of the close frame,
// then the end of the connection.
func closeCleanly(t *testing.T, ws *wsConn) {
	t.Helper()
	if err := ws.send(8, []byte{0x03, 0xe8}); err != nil {
		t.Fatalf("send close: %v", err)
	}
	op, payload, err := ws.recv(5 * time.Second)
	if err != nil || op != 8 || len(payload) < 2 || binary.BigEndian.Uint16(payload) != 1000 {
		t.Fatalf("close echo: opcode %d payload %v err %v", op, payload, err)
	}
	if _, _, err := ws.recv(5 * time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close echo: %v, want EOF", err)
	}
}

func TestProxyWebSocketAtShutdown(t *testing.T) {
	needNode(t)
	const budget = 3 * time.Second
	in := start(t, "--workers", "1", "--shutdown-timeout", budget.String(), "--", "node", proxyAppJS())

	polite, resp := dialWS(t, in.addr, "/ws", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	stubborn, resp := dialWS(t, in.addr, "/ws?linger=1", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	polite.roundTrip(t)
	stubborn.roundTrip(t)

	stopped := time.Now()
	in.signal(syscall.SIGTERM)

	// The app gets its stop signal while the tunnels are open, and its
	// goodbye reaches the client.
	op, payload, err := polite.recv(budget)
	if err != nil || op != 8 || len(payload) < 2 || binary.BigEndian.Uint16(payload) != 1001 {
		t.Fatalf("at SIGTERM: opcode %d payload %q err %v, want close 1001", op, payload, err)
	}
	if d := time.Since(stopped); d > budget/2 {
		t.Errorf("the app's close frame came %s after SIGTERM, want well before the %s deadline", d, budget)
	}
	if _, _, err := polite.recv(budget); !errors.Is(err, io.EOF) {
		t.Errorf("after the app's close frame: %v, want EOF", err)
	}

	// The other tunnel still carries traffic during the stop...
	if err := stubborn.send(1, []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	if op, got, err := stubborn.recv(time.Second); err != nil || op != 1 || string(got) != "still there?" {
		t.Fatalf("echo during the stop: %d %q %v", op, got, err)
	}
	// ...until percore closes it at the deadline.
	_, _, err = stubborn.recv(2 * budget)
	closedAfter := time.Since(stopped)
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("lingering tunnel: %v, want it closed", err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || closedAfter < budget-500*time.Millisecond || closedAfter > budget+2*time.Second {
		t.Errorf("lingering tunnel closed %s after SIGTERM, want at the %s deadline", closedAfter, budget)
	}
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0; logs:\n%s", code, in.logs.String())
	}
	if strings.Contains(in.logs.String(), "panic") {
		t.Errorf("logs mention a panic:\n%s", in.logs.String())
	}
}
