package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// websocketGUID is the GUID of RFC 6455 §1.3 that the server hashes with the
// client's key to prove it read the handshake.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opText  = 0x1
	opClose = 0x8
)

// maxFramePayload bounds what the test client reads in one frame.
const maxFramePayload = 1 << 20

// wsEcho opens a WebSocket to addr (RFC 6455 §4.1), sends msg in one masked
// text frame, expects it back in one unmasked text frame, then closes with
// 1000 and expects the server to answer 1000 and close the TCP connection.
func wsEcho(addr, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialWorker(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	key := base64.StdEncoding.EncodeToString(nonce)
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, key); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("read handshake answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return fmt.Errorf("handshake answered %s, not 101 Switching Protocols", resp.Status)
	}
	// §4.1: the client fails the connection unless these hold.
	sum := sha1.Sum([]byte(key + websocketGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		return fmt.Errorf("101 without Upgrade: websocket and Connection: Upgrade: %v", resp.Header)
	}

	if err := writeFrame(conn, opText, []byte(msg)); err != nil {
		return err
	}
	op, payload, err := readFrame(br)
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if op != opText || string(payload) != msg {
		return fmt.Errorf("echo = opcode %#x %q, want a text frame %q", op, payload, msg)
	}

	// §5.5.1: the server answers a close frame with its own, and (§7.1.1)
	// closes the TCP connection.
	if err := writeFrame(conn, opClose, binary.BigEndian.AppendUint16(nil, 1000)); err != nil {
		return err
	}
	op, payload, err = readFrame(br)
	if err != nil {
		return fmt.Errorf("read close: %w", err)
	}
	if op != opClose || len(payload) < 2 || binary.BigEndian.Uint16(payload) != 1000 {
		return fmt.Errorf("close answer = opcode %#x %x, want a close frame with 1000", op, payload)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the close frames the server did not close the connection: %v", err)
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// writeFrame writes one final client frame, masked as §5.3 requires.
func writeFrame(w io.Writer, op byte, payload []byte) error {
	var b bytes.Buffer
	b.WriteByte(0x80 | op)
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(0x80 | byte(n))
	case n < 1<<16:
		b.WriteByte(0x80 | 126)
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
	default:
		b.WriteByte(0x80 | 127)
		b.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	b.Write(mask[:])
	for i, c := range payload {
		b.WriteByte(c ^ mask[i%4])
	}
	_, err := w.Write(b.Bytes())
	return err
}

// readFrame reads one final, unmasked server frame (§5.1: a server never
// masks) and returns its opcode and payload.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 {
		return 0, nil, fmt.Errorf("frame header %08b: want FIN set and no reserved bits", h[0])
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("the server masked a frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > maxFramePayload {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}
