package proxy

import (
	"io"
	"net"
)

// maxScannedHeader bounds how much of a connection's first header block
// bareLFConn looks at: more than the largest header percore accepts.
const maxScannedHeader = 1 << 20

// bareLFConn is a client connection that watches the end of its first
// request's header block. fasthttp waits for a block to end in CRLF CRLF, so a
// client whose lines all end in a bare LF (RFC 9112 section 2.2 allows a
// server to refuse them) would wait for the header timeout and get 408; the
// docs/proxy.md promises 400. When the first empty line ends a block that is not
// CRLF CRLF, the connection reports the end of the client's data after those
// bytes, as if the client had half-closed: fasthttp answers 400 at once and
// closes. Only the first header is watched, which costs nothing after it
// and never mistakes a body for a header: a client that speaks in bare LFs
// does so from its first request, whose 400 closes the connection.
//
// Its fields are used by the connection's serving goroutine only.
type bareLFConn struct {
	net.Conn
	done     bool // the first header block ended, or is no longer watched
	eof      bool // it ended in a bare LF: reads report io.EOF
	started  bool // a byte other than CR or LF came (empty lines before the request line are skipped)
	cr       bool // the last byte was CR
	prevBare bool // the last line ended in a bare LF
	lineLen  int  // bytes of the current line, CRs included
	scanned  int
}

// Read implements io.Reader.
func (c *bareLFConn) Read(p []byte) (int, error) {
	if c.done {
		if c.eof {
			return 0, io.EOF
		}
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	c.scan(p[:n])
	return n, err
}

// scan follows the first header block through b, up to its first empty line.
func (c *bareLFConn) scan(b []byte) {
	for _, ch := range b {
		if !c.started {
			if ch == '\r' || ch == '\n' {
				continue
			}
			c.started = true
		}
		switch ch {
		case '\n':
			bare := !c.cr
			if c.lineLen == 0 || (c.lineLen == 1 && c.cr) {
				c.done = true
				c.eof = bare || c.prevBare
				return
			}
			c.prevBare, c.lineLen, c.cr = bare, 0, false
		case '\r':
			c.lineLen++
			c.cr = true
		default:
			c.lineLen++
			c.cr = false
		}
	}
	c.scanned += len(b)
	if c.scanned > maxScannedHeader {
		c.done = true
	}
}

// ReadFrom implements io.ReaderFrom with the connection's own, so that a
// response body streams as it does without the wrapper.
func (c *bareLFConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

// CloseWrite shuts down the writing side, for tunnels' half-closes.
func (c *bareLFConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// bareLFListener accepts bareLFConns.
type bareLFListener struct{ net.Listener }

// Accept implements net.Listener.
func (l bareLFListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bareLFConn{Conn: c}, nil
}
