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

// header is what the request and response headers of fasthttp share.
type header interface {
	Peek(key string) []byte
	Del(key string)
}

// removeHopByHop deletes the headers named in Connection, then the fixed
// hop-by-hop list. It keeps "Te: trailers".
func removeHopByHop(h header) {
	if conn := h.Peek("Connection"); len(conn) > 0 {
		var buf [256]byte
		for _, name := range connectionTokens(append(buf[:0], conn...)) {
			h.Del(string(name))
		}
	}
	keepTrailers := bytes.EqualFold(bytes.TrimSpace(h.Peek("Te")), []byte("trailers"))
	for _, name := range hopHeaders {
		if name == "Te" && keepTrailers {
			continue
		}
		h.Del(name)
	}
}

// connectionTokens splits a Connection header value into its tokens
// (RFC 9110 section 7.6.1: a comma-separated list, optional white space).
// The returned slices point into v.
func connectionTokens(v []byte) [][]byte {
	var tokens [][]byte
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if tok = bytes.Trim(tok, " \t"); len(tok) > 0 {
			tokens = append(tokens, tok)
		}
	}
	return tokens
}

// Trusted is a list of networks whose peers may set forwarded headers.
type Trusted []netip.Prefix

// DefaultTrusted are the peers trusted by default: loopback and the private
// ranges that platform edges (Fly's proxy, Kubernetes ingresses) connect from.
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
