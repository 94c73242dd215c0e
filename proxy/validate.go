package proxy

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// checkRequest decides whether a parsed request may be forwarded. It returns
// 0, or the status to refuse the request with and a reason for the log.
//
// fasthttp v1.78.0 already refuses, with 400 and a closed connection: bytes
// that are not HTTP, invalid method tokens, a bad request line, control bytes
// in header names or values, white space before a header colon, several
// Content-Length headers (equal or not), a Content-Length that is not a plain
// decimal number, several Transfer-Encoding headers, a transfer coding other
// than chunked or identity, Transfer-Encoding in HTTP/1.0, several Host
// headers and, in HTTP/1.1, a missing Host. A header block over the read
// buffer gets 431.
//
// It accepts, and checkRequest refuses, the shapes used to smuggle requests
// past a front proxy that reads them another way (RFC 9112 sections 2.2, 5.2,
// 6.1 and 6.3): Content-Length together with Transfer-Encoding, the
// "identity" coding, obs-fold continuation lines, and a bare LF ending a
// header line, and a header name that is not a token (RFC 9110 section 5.1:
// "X A" with a space inside, which fasthttp keeps and a worker's parser
// refuses or reads another way). It also refuses HTTP versions other than 1.0 and 1.1 (505)
// and CONNECT (405), which would turn percore into a forward proxy. A request
// refused here never reaches a worker.
//
// It refuses as well what percore could not express to a worker, so that
// such a request is the client's fault (400) and never a worker's (502): an
// absolute-form target whose scheme is not http or whose authority is empty
// (percore's listener speaks plain HTTP, and its client to the workers writes
// only http targets; an https target is refused rather than quietly sent as
// http), and a Connection header that names a framing header
// (Content-Length, Transfer-Encoding or Host), whose removal as hop-by-hop
// (RFC 9110 section 7.6.1) would leave the request without its framing.
func checkRequest(h *fasthttp.RequestHeader) (int, string) {
	if !h.IsHTTP11() && !bytes.Equal(h.Protocol(), []byte("HTTP/1.0")) {
		return fasthttp.StatusHTTPVersionNotSupported, "unsupported HTTP version"
	}
	if h.IsConnect() {
		return fasthttp.StatusMethodNotAllowed, "CONNECT is not proxied"
	}
	if why := checkTarget(h.RequestURI()); why != "" {
		return fasthttp.StatusBadRequest, why
	}
	s := scanHeaderBlock(h.RawHeaders())
	switch {
	case s.bareLF:
		return fasthttp.StatusBadRequest, "header line ends in a bare LF"
	case s.folded:
		return fasthttp.StatusBadRequest, "obs-fold header continuation"
	case s.badName:
		return fasthttp.StatusBadRequest, "header name that is not a token"
	case s.transferEncoding > 0 && s.contentLength > 0:
		return fasthttp.StatusBadRequest, "both Content-Length and Transfer-Encoding"
	case s.transferEncoding > 0 && !s.chunked:
		return fasthttp.StatusBadRequest, "Transfer-Encoding other than chunked"
	case s.connectionFraming:
		return fasthttp.StatusBadRequest, "Connection names a framing header"
	}
	return 0, ""
}

// checkTarget returns why an absolute-form request target (RFC 9112
// section 3.2.2) cannot be forwarded, or "" when it can, or when the target
// is in origin or asterisk form.
func checkTarget(uri []byte) string {
	if len(uri) == 0 || uri[0] == '/' || uri[0] == '*' {
		return ""
	}
	scheme, rest, ok := bytes.Cut(uri, []byte("://"))
	if !ok || !bytes.EqualFold(scheme, []byte("http")) {
		return "absolute-form target with a scheme other than http"
	}
	if end := bytes.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	if at := bytes.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if len(rest) == 0 || rest[0] == ':' {
		return "absolute-form target without a host"
	}
	return ""
}

// headerBlock is what scanHeaderBlock found in a header block as it came
// off the wire.
type headerBlock struct {
	bareLF           bool // a line ends in LF without CR
	folded           bool // a line starts with SP or HTAB (obs-fold)
	badName          bool // a field name holds a byte that is not a tchar
	contentLength    int  // Content-Length lines
	transferEncoding int  // Transfer-Encoding lines
	chunked          bool // the last Transfer-Encoding line says exactly "chunked"
	// connectionFraming: a Connection line names Content-Length,
	// Transfer-Encoding or Host.
	connectionFraming bool
}

// scanHeaderBlock reads the raw header lines (without the request line), as
// fasthttp's RequestHeader.RawHeaders keeps them, up to the empty line.
func scanHeaderBlock(raw []byte) headerBlock {
	var s headerBlock
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break
		}
		line := raw[:i]
		raw = raw[i+1:]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			s.bareLF = true
			continue
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			s.folded = true
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := line[:colon]
		if !isToken(name) {
			s.badName = true
			continue
		}
		switch len(name) {
		case len("Connection"):
			if bytes.EqualFold(name, []byte("Connection")) {
				v := line[colon+1:]
				s.connectionFraming = s.connectionFraming || hasToken(v, "Content-Length") ||
					hasToken(v, "Transfer-Encoding") || hasToken(v, "Host")
			}
		case len("Content-Length"):
			if bytes.EqualFold(name, []byte("Content-Length")) {
				s.contentLength++
			}
		case len("Transfer-Encoding"):
			if bytes.EqualFold(name, []byte("Transfer-Encoding")) {
				s.transferEncoding++
				s.chunked = bytes.EqualFold(bytes.Trim(line[colon+1:], " \t"), []byte("chunked"))
			}
		}
	}
	return s
}

// isToken reports whether b is a token (RFC 9110 section 5.6.2): one or
// more tchars.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in a token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
