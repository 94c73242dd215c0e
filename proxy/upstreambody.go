package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// errChunked is a chunked response body whose framing is broken.
var errChunked = errors.New("malformed chunked body")

// maxTrailer bounds the trailer section of a chunked response body.
const maxTrailer = DefaultHeaderBufferSize

// framing is how the end of a response body is found (RFC 9112 section 6.3).
type framing uint8

const (
	framingLength  framing = iota // Content-Length bytes
	framingChunked                // chunked transfer coding, then a trailer section
	framingClose                  // until the worker closes the connection
)

// String implements fmt.Stringer.
func (f framing) String() string {
	switch f {
	case framingLength:
		return "content-length"
	case framingChunked:
		return "chunked"
	case framingClose:
		return "close"
	}
	return fmt.Sprintf("framing(%d)", uint8(f))
}

// upstreamBody is a worker's response body, read from the connection it came
// on exactly to its framing: never a byte beyond it. Closing it gives the
// connection back to the pool when the body ended at its framing with
// nothing more buffered, and closes it otherwise (a body cut short, bytes
// past the framing, a worker or request that asked to close).
//
// C is fasthttp's connection type, which is not exported; release and
// discard are the HostClient methods that return and close one. An
// upstreamBody is not safe for concurrent use: Read and CloseWithError run on
// the goroutine writing the response.
type upstreamBody[C any] struct {
	t       *transport
	hc      *fasthttp.HostClient
	cc      C
	release func(*fasthttp.HostClient, C)
	discard func(*fasthttp.HostClient, C)
	br      *bufio.Reader

	framing framing
	left    int64 // bytes left of the body (length) or of the current chunk (chunked)
	inChunk bool  // chunked: reading a chunk's data, or its closing CRLF when left is 0
	keep    bool  // neither side asked to close the connection
	done    bool  // the body ended at its framing
	err     error // the body failed; every later Read returns it

	trailer []byte // the trailer fields received, one "name:value\n" line each
}

// upstreamBodies pools upstreamBodies of every connection type (there is one).
var upstreamBodies sync.Pool

func acquireUpstreamBody[C any](t *transport, hc *fasthttp.HostClient, cc C, release, discard func(*fasthttp.HostClient, C)) *upstreamBody[C] {
	b, _ := upstreamBodies.Get().(*upstreamBody[C])
	if b == nil {
		b = new(upstreamBody[C])
	}
	b.t, b.hc, b.cc, b.release, b.discard = t, hc, cc, release, discard
	return b
}

// start begins a body of contentLength as fasthttp parsed it: -1 for
// chunked, -2 for a body that lasts until the connection closes.
func (b *upstreamBody[C]) start(br *bufio.Reader, contentLength int, keep bool) {
	b.br, b.keep = br, keep
	switch {
	case contentLength >= 0:
		b.framing, b.left = framingLength, int64(contentLength)
	case contentLength == -1:
		b.framing = framingChunked
	default:
		b.framing, b.keep = framingClose, false
	}
}

// Read implements io.Reader.
func (b *upstreamBody[C]) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	var n int
	var err error
	switch b.framing {
	case framingLength:
		n, err = b.readData(p)
		if err == nil && b.left == 0 {
			b.done = true
		}
	case framingChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.br.Read(p)
		if err == io.EOF {
			b.done = true
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// readData reads up to the end of the body or the current chunk.
func (b *upstreamBody[C]) readData(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// readChunked reads the chunked coding (RFC 9112 section 7.1): data from the
// current chunk, else the next chunk's size line; after the last chunk, the
// trailer section.
func (b *upstreamBody[C]) readChunked(p []byte) (int, error) {
	if b.left == 0 {
		if b.inChunk {
			if err := b.readCRLF(); err != nil {
				return 0, err
			}
			b.inChunk = false
		}
		size, err := b.readSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			b.done = true
			return 0, io.EOF
		}
		b.left, b.inChunk = size, true
	}
	return b.readData(p)
}

// readLine reads a line of the chunked framing, without its line ending; a
// bare LF ends a line too, as for most HTTP/1.1 recipients.
func (b *upstreamBody[C]) readLine() ([]byte, error) {
	line, err := b.br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("read chunked body: line over %d bytes: %w", b.br.Size(), errChunked)
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readCRLF reads the line ending that closes a chunk's data.
func (b *upstreamBody[C]) readCRLF() error {
	line, err := b.readLine()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return fmt.Errorf("read chunked body: data past the chunk size: %w", errChunked)
	}
	return nil
}

// readSize reads a chunk-size line: hexadecimal digits, then optional
// white space and chunk extensions, which are ignored.
func (b *upstreamBody[C]) readSize() (int64, error) {
	line, err := b.readLine()
	if err != nil {
		return 0, err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 { // 15 hex digits fit an int64
		return 0, fmt.Errorf("read chunked body: chunk size %q: %w", line, errChunked)
	}
	var size int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("read chunked body: chunk size %q: %w", line, errChunked)
		}
		size = size<<4 | int64(d)
	}
	return size, nil
}

// readTrailer reads the trailer section up to its empty line and keeps its
// fields for copyTrailers.
func (b *upstreamBody[C]) readTrailer() error {
	for {
		line, err := b.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) || !validFieldValue(line[colon+1:]) {
			return fmt.Errorf("read chunked body: trailer line %q: %w", line, errChunked)
		}
		if len(b.trailer)+len(line) > maxTrailer {
			return fmt.Errorf("read chunked body: trailer section over %d bytes: %w", maxTrailer, errChunked)
		}
		b.trailer = append(b.trailer, line[:colon]...)
		b.trailer = append(b.trailer, ':')
		b.trailer = append(b.trailer, bytes.Trim(line[colon+1:], " \t")...)
		b.trailer = append(b.trailer, '\n')
	}
}

// copyTrailers adds the trailer fields received to dst, a response whose
// header is written already, and forgets them. Fields that must not be sent
// in a trailer section (RFC 9110 section 6.5.1: framing, routing,
// authentication, cookies, content description, as fasthttp lists them) are
// dropped.
func (b *upstreamBody[C]) copyTrailers(dst *fasthttp.ResponseHeader) {
	for rest := b.trailer; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		colon := bytes.IndexByte(line, ':')
		name, value := line[:colon], line[colon+1:]
		if dst.AddTrailerBytes(name) != nil {
			continue
		}
		dst.AddBytesKV(name, value)
	}
	b.trailer = b.trailer[:0]
}

// CloseWithError implements fasthttp.ReadCloserWithError: it gives the
// connection back or closes it, and recycles b. Whatever err says, the
// connection is reused only when the body ended at its framing. It must be
// called once, by the Response holding b (fasthttp detaches the stream as it
// closes it).
func (b *upstreamBody[C]) CloseWithError(error) error {
	clean := b.done && b.err == nil && b.keep && b.br.Buffered() == 0
	b.hc.ReleaseReader(b.br)
	if clean {
		b.release(b.hc, b.cc)
	} else {
		b.discard(b.hc, b.cc)
	}
	*b = upstreamBody[C]{trailer: b.trailer[:0]}
	upstreamBodies.Put(b)
	return nil
}

// trailerSource is a response body that ends with trailer fields.
type trailerSource interface {
	copyTrailers(dst *fasthttp.ResponseHeader)
}

// validFieldName reports whether name is a token (RFC 9110 section 5.1).
func validFieldName(name []byte) bool {
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return len(name) > 0
}

// validFieldValue reports whether v holds no control byte but HTAB (RFC 9110
// section 5.5).
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
