package proxy

import (
	"bytes"
	"net"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 (and
// RFC 2616 section 13.5.1): they describe one connection and must not be
// forwarded. "Te: trailers" is the one value of Te kept.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// allHops has a bit for each of hopHeaders.
const allHops = 1<<len(hopHeaders) - 1

// connectionHop is the bit of "Connection" in a set of hopHeaders.
const connectionHop = 1 << 0

// removeHopByHop deletes the headers named in Connection, then the fixed
// hop-by-hop list. It keeps "Te: trailers".
func removeHopByHop[H *fasthttp.RequestHeader | *fasthttp.ResponseHeader](h H) {
	switch h := any(h).(type) {
	case *fasthttp.RequestHeader:
		removeRequestHops(h, false)
	case *fasthttp.ResponseHeader:
		if conn := h.Peek("Connection"); len(conn) > 0 {
			// Deleting changes the header's storage, which conn points into.
			// The copy stays on the stack as long as DelBytes is called on
			// the concrete type: through an interface, buf would escape.
			var buf [256]byte
			for rest := append(buf[:0], conn...); len(rest) > 0; {
				var tok []byte
				if tok, rest = cutToken(rest); len(tok) > 0 {
					h.DelBytes(tok)
				}
			}
		}
		deleteHops(h, responseHops(h))
	}
}

// removeRequestHops is removeHopByHop for a request. From a trusted peer
// (fromTrusted) the forwarding headers (isForwardingHeader) stay even when
// its Connection header names them: they are what the peer is trusted for,
// and an edge that lists its X-Forwarded-For there would otherwise take its
// own client's address away. An untrusted peer's are replaced anyway.
func removeRequestHops(h *fasthttp.RequestHeader, fromTrusted bool) {
	present := requestHops(h)
	if present&connectionHop != 0 {
		if conn := h.Peek("Connection"); len(conn) > 0 {
			var buf [256]byte // see removeHopByHop
			for rest := append(buf[:0], conn...); len(rest) > 0; {
				var tok []byte
				if tok, rest = cutToken(rest); len(tok) > 0 && !(fromTrusted && isForwardingHeader(tok)) {
					h.DelBytes(tok)
				}
			}
		}
	}
	deleteHops(h, present)
}

// requestHops returns the hopHeaders a request may hold, as bits, from its
// header block as it came off the wire (RawHeaders): fasthttp stores a
// parsed field only from a line of that block, and checkRequest refuses the
// blocks whose lines could be read two ways (obs-fold, bare LF, a name that
// is not a token). When the block cannot tell, it returns allHops: a header
// not read from the wire, a line it does not understand, or a chunked body,
// whose trailer fields fasthttp may have read with it.
func requestHops(h *fasthttp.RequestHeader) uint16 {
	raw := h.RawHeaders()
	if len(raw) == 0 || h.ContentLength() == -1 {
		return allHops
	}
	var present uint16
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return allHops
		}
		if i := hopIndex(line[:colon]); i >= 0 {
			present |= 1 << i
		}
	}
	return present
}

// responseHops returns the hopHeaders a response holds, as bits: most
// answers have Connection and Keep-Alive alone. A response that announces
// trailers gets allHops, since fasthttp's iterator would build the Trailer
// value afresh.
func responseHops(h *fasthttp.ResponseHeader) uint16 {
	if len(h.PeekTrailerKeys()) > 0 {
		return allHops
	}
	var present uint16
	for key := range h.All() {
		if i := hopIndex(key); i >= 0 {
			present |= 1 << i
		}
	}
	return present
}

// hopIndex returns the index in hopHeaders of the field name key, compared
// without case, or -1.
func hopIndex(key []byte) int {
	// Most names are none of them: their length says so at once.
	switch len(key) {
	case 2, 7, 10, 16, 17, 18, 19:
	default:
		return -1
	}
	for i, name := range hopHeaders {
		if len(key) == len(name) && bytes.EqualFold(key, []byte(name)) {
			return i
		}
	}
	return -1
}

// deleteHops deletes the hopHeaders whose bits are set in present, keeping
// "Te: trailers". The names are given in the canonical form fasthttp stores
// parsed names in, so they are looked up without normalizing: fasthttp
// would otherwise copy and normalize each name for each lookup.
func deleteHops(h interface {
	Peek(key string) []byte
	Del(key string)
	DisableNormalizing() bool
	EnableNormalizing() bool
}, present uint16) {
	if present == 0 {
		return
	}
	wasOff := h.DisableNormalizing()
	for i, name := range hopHeaders {
		if present&(1<<i) == 0 {
			continue
		}
		if name == "Te" && bytes.EqualFold(bytes.TrimSpace(h.Peek("Te")), []byte("trailers")) {
			continue
		}
		h.Del(name)
	}
	if !wasOff {
		h.EnableNormalizing()
	}
}

// cutToken returns the first element of a comma-separated list such as a
// Connection or Upgrade value (RFC 9110 section 5.6.1: elements separated by
// commas and optional white space), trimmed, and the rest of the list. The
// element is empty for an empty element. It allocates nothing:
//
//	for rest := v; len(rest) > 0; {
//		var tok []byte
//		if tok, rest = cutToken(rest); len(tok) > 0 { use(tok) }
//	}
func cutToken(list []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(list, ','); i >= 0 {
		tok, rest = list[:i], list[i+1:]
	} else {
		tok = list
	}
	return bytes.Trim(tok, " \t"), rest
}

// hasToken reports whether the list v holds name, compared without case.
func hasToken(v []byte, name string) bool {
	for rest := v; len(rest) > 0; {
		var tok []byte
		if tok, rest = cutToken(rest); len(tok) == len(name) && bytes.EqualFold(tok, []byte(name)) {
			return true
		}
	}
	return false
}

// setForwarded sets the forwarding headers the worker sees.
//
// From a peer outside trusted, every line of every forwarding header
// (forwardingHeaders: X-Forwarded-*, Forwarded, X-Real-IP, X-Client-IP and
// the client-address headers of CDNs, platforms and libraries) is removed,
// whatever its case or however often it repeats, and percore sets its own
// X-Forwarded-For (the peer), -Proto (http) and -Host (the Host). Apps and
// frameworks read any of them (Express's req.ip reads X-Forwarded-For, the
// request-ip package X-Client-IP first), so leaving one line would let a
// client choose its address.
//
// From a trusted peer they are kept; its X-Forwarded-For lines are folded
// into one list, in order, with the peer appended last, and -Proto and
// -Host are set when it sent none.
//
// It allocates nothing unless the folded X-Forwarded-For outgrows a stack
// buffer.
func setForwarded(h *fasthttp.RequestHeader, peer net.Addr, trusted Trusted) {
	var ipBuf [64]byte
	ip := appendPeerIP(ipBuf[:0], peer)
	if trusted.has(peer) {
		var buf [512]byte
		h.SetBytesV("X-Forwarded-For", appendForwardedFor(buf[:0], h, ip))
		if len(h.Peek("X-Forwarded-Proto")) == 0 {
			h.Set("X-Forwarded-Proto", "http")
		}
		if len(h.Peek("X-Forwarded-Host")) == 0 {
			h.SetBytesV("X-Forwarded-Host", h.Host())
		}
		return
	}
	removeForwarding(h)
	h.SetBytesV("X-Forwarded-For", ip)
	h.Set("X-Forwarded-Proto", "http")
	h.SetBytesV("X-Forwarded-Host", h.Host())
}

// removeForwarding deletes every line of every forwarding header. Deleting
// a name deletes all its lines (fasthttp's Set would replace only the
// first). The names are found in the header block as it came off the wire,
// which holds each line the client sent; a header built by hand has no such
// block, and then the fixed names are deleted.
func removeForwarding(h *fasthttp.RequestHeader) {
	raw := h.RawHeaders()
	if len(raw) == 0 {
		for _, name := range forwardingHeaders {
			if !strings.HasSuffix(name, "*") {
				h.Del(name)
			}
		}
		return
	}
	for len(raw) > 0 {
		var name []byte
		name, _, raw = nextHeader(raw)
		if isForwardingHeader(name) {
			h.DelBytes(name) // copies name first: raw stays as it was
		}
	}
}

// appendForwardedFor appends to dst the X-Forwarded-For list a trusted
// peer's request goes on with: the values of all its X-Forwarded-For lines
// in the order they came, then ip. With more than one line, it deletes them
// all, since SetBytesV replaces only the first.
func appendForwardedFor(dst []byte, h *fasthttp.RequestHeader, ip []byte) []byte {
	lines := h.PeekAll("X-Forwarded-For")
	switch {
	case len(lines) == 0:
		// None sent, or named in Connection and removed.
	case len(lines) == 1:
		if v := lines[0]; len(v) > 0 {
			dst = append(append(dst, v...), ", "...)
		}
	case len(h.RawHeaders()) == 0:
		// Built by code: no record of the order but the stored one.
		for _, v := range lines {
			if len(v) > 0 {
				dst = append(append(dst, v...), ", "...)
			}
		}
		h.Del("X-Forwarded-For")
	default:
		// Deleting other headers may have reordered the stored lines; the
		// block as it came off the wire has them in order.
		for raw := h.RawHeaders(); len(raw) > 0; {
			var name, value []byte
			name, value, raw = nextHeader(raw)
			if len(name) != len("X-Forwarded-For") || !bytes.EqualFold(name, []byte("X-Forwarded-For")) {
				continue
			}
			if value = trimOWS(value); len(value) > 0 {
				dst = append(append(dst, value...), ", "...)
			}
		}
		h.Del("X-Forwarded-For")
	}
	return append(dst, ip...)
}

// nextHeader splits the first line off a raw header block (lines that end
// in CRLF, or LF) into its name and its value, untrimmed, and returns the
// rest of the block. A line without a colon has an empty name.
func nextHeader(raw []byte) (name, value, rest []byte) {
	line := raw
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line, rest = raw[:i], raw[i+1:]
	}
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		return line[:i], line[i+1:], rest
	}
	return nil, nil, rest
}

// trimOWS trims the optional white space around a header value (RFC 9110
// section 5.5) and the CR ending its line.
func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '\r') {
		v = v[:len(v)-1]
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	return v
}

func peerIP(a net.Addr) net.IP {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP
	}
	return nil
}

// appendPeerIP appends the peer's IP as text, without the port.
func appendPeerIP(dst []byte, a net.Addr) []byte {
	ip := peerIP(a)
	if ip == nil {
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return append(dst, a.String()...)
		}
		return append(dst, host...)
	}
	if v4 := ip.To4(); v4 != nil {
		for i, b := range v4 {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = strconv.AppendUint(dst, uint64(b), 10)
		}
		return dst
	}
	return append(dst, ip.String()...)
}
