package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 (and
// RFC 2616 section 13.5.1): they describe one connection and must not be
// forwarded. "Te: trailers" is the one value of Te kept.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes the headers named in Connection, then the fixed
// hop-by-hop list. It keeps "Te: trailers".
func removeHopByHop[H *fasthttp.RequestHeader | *fasthttp.ResponseHeader](h H) {
	switch h := any(h).(type) {
	case *fasthttp.RequestHeader:
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
		removeFixedHops(h)
	case *fasthttp.ResponseHeader:
		if conn := h.Peek("Connection"); len(conn) > 0 {
			var buf [256]byte
			for rest := append(buf[:0], conn...); len(rest) > 0; {
				var tok []byte
				if tok, rest = cutToken(rest); len(tok) > 0 {
					h.DelBytes(tok)
				}
			}
		}
		removeFixedHops(h)
	}
}

// removeFixedHops deletes the fixed hop-by-hop list, keeping "Te: trailers".
func removeFixedHops(h interface {
	Peek(key string) []byte
	Del(key string)
}) {
	keepTrailers := bytes.EqualFold(bytes.TrimSpace(h.Peek("Te")), []byte("trailers"))
	for _, name := range hopHeaders {
		if name == "Te" && keepTrailers {
			continue
		}
		h.Del(name)
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

// Trusted is a list of networks whose peers may set forwarded headers.
type Trusted []netip.Prefix

// DefaultTrusted are the peers trusted by default: loopback (127.0.0.0/8,
// ::1), the private ranges of RFC 1918 and RFC 4193, IPv6 link-local and
// the shared CGNAT range 100.64.0.0/10, which platform edges (Fly's proxy,
// Kubernetes ingresses, cloud load balancers) connect from. A public address
// is never trusted by default.
func DefaultTrusted() Trusted {
	var t Trusted
	for _, s := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
		"192.168.0.0/16", "fc00::/7", "fe80::/10", "100.64.0.0/10"} {
		t = append(t, netip.MustParsePrefix(s))
	}
	return t
}

func (t Trusted) contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For, -Proto and -Host for the worker. From
// a trusted peer, the client's chain in X-Forwarded-For is kept and the peer
// appended, and its -Proto and -Host stand; from anyone else they are
// replaced, so a client cannot forge its address.
func setForwarded(h *fasthttp.RequestHeader, peer net.Addr, trusted Trusted) {
	var ipBuf [64]byte
	ip := appendPeerIP(ipBuf[:0], peer)
	fromTrusted := false
	if addr, ok := netip.AddrFromSlice(peerIP(peer)); ok {
		fromTrusted = trusted.contains(addr)
	}
	if prior := h.Peek("X-Forwarded-For"); fromTrusted && len(prior) > 0 {
		var buf [512]byte
		v := append(append(append(buf[:0], prior...), ", "...), ip...)
		h.SetBytesV("X-Forwarded-For", v)
	} else {
		h.SetBytesV("X-Forwarded-For", ip)
	}
	if !fromTrusted || len(h.Peek("X-Forwarded-Proto")) == 0 {
		h.Set("X-Forwarded-Proto", "http")
	}
	if !fromTrusted || len(h.Peek("X-Forwarded-Host")) == 0 {
		h.SetBytesV("X-Forwarded-Host", h.Host())
	}
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
