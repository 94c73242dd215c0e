package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Trusted is a list of networks whose peers may set forwarding headers
// (X-Forwarded-*, Forwarded, X-Real-IP and the client-address headers of
// CDNs and platforms). A nil Trusted in Config means DefaultTrusted; an
// empty non-nil one trusts nobody.
type Trusted []netip.Prefix

// The named sets of networks ParseTrusted accepts.
const (
	// TrustedLoopback is 127.0.0.0/8 and ::1: a proxy on the same host or in
	// the same network namespace (a sidecar). It is the default.
	TrustedLoopback = "loopback"
	// TrustedPrivate is loopback, the private ranges of RFC 1918 and RFC 4193
	// (fc00::/7), IPv6 link-local (fe80::/10) and the shared range of RFC 6598
	// (100.64.0.0/10): wherever a Kubernetes ingress, a Docker network or a
	// cloud load balancer connects from.
	TrustedPrivate = "private"
	// TrustedFly is where Fly.io's proxy reaches a Machine from: a private
	// IPv4 address of the Machine's own network (seen as 172.19.x.x, inside
	// 172.16.0.0/12), and the organisation's private IPv6 network (6PN,
	// fdaa::/16).
	TrustedFly = "fly"
	// TrustedNone trusts nobody: every peer's forwarding headers are removed.
	TrustedNone = "none"
)

// trustedNames lists the named sets in the order error messages give them.
var trustedNames = [...]string{TrustedLoopback, TrustedPrivate, TrustedFly, TrustedNone}

// NamedTrusted returns the networks of a named set (TrustedLoopback,
// TrustedPrivate, TrustedFly or TrustedNone), and false for any other name.
func NamedTrusted(name string) (Trusted, bool) {
	var cidrs []string
	switch name {
	case TrustedLoopback:
		cidrs = []string{"127.0.0.0/8", "::1/128"}
	case TrustedPrivate:
		cidrs = []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
			"192.168.0.0/16", "fc00::/7", "fe80::/10", "100.64.0.0/10"}
	case TrustedFly:
		cidrs = []string{"172.16.0.0/12", "fdaa::/16"}
	case TrustedNone:
		return Trusted{}, true
	default:
		return nil, false
	}
	t := make(Trusted, 0, len(cidrs))
	for _, s := range cidrs {
		t = append(t, netip.MustParsePrefix(s))
	}
	return t, true
}

// DefaultTrusted are the peers trusted unless told otherwise: loopback only,
// as Caddy, Traefik and nginx trust nobody beyond the host until told. A
// peer elsewhere, even on a private network (another pod, a container on the
// same bridge), cannot choose the client address the app sees.
func DefaultTrusted() Trusted {
	t, _ := NamedTrusted(TrustedLoopback)
	return t
}

// ParseTrusted reads a comma-separated list of named sets (loopback,
// private, fly), CIDRs and single addresses, such as "private" or
// "loopback, 203.0.113.0/24, 2001:db8::7"; "none" alone trusts nobody.
// Spaces around entries are ignored and duplicates dropped. An entry that is
// none of these is an error naming it.
func ParseTrusted(v string) (Trusted, error) {
	t := Trusted{}
	entries := 0
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		entries++
		if named, ok := NamedTrusted(s); ok {
			if s == TrustedNone && strings.TrimSpace(v) != TrustedNone {
				return nil, fmt.Errorf("%q cannot be combined with other entries", s)
			}
			t = appendNew(t, named...)
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
			}
			t = appendNew(t, unmapPrefix(p).Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address, a CIDR or one of %s", s, strings.Join(trustedNames[:], ", "))
		}
		a = a.Unmap()
		t = appendNew(t, netip.PrefixFrom(a, a.BitLen()))
	}
	if entries == 0 {
		return nil, fmt.Errorf("want %s, CIDRs or addresses separated by commas", strings.Join(trustedNames[:], ", "))
	}
	return t, nil
}

// appendNew appends the prefixes t does not hold yet.
func appendNew(t Trusted, ps ...netip.Prefix) Trusted {
	for _, p := range ps {
		if !slices.Contains(t, p) {
			t = append(t, p)
		}
	}
	return t
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 form (10.0.0.0/8), which is how peers are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// String lists the networks separated by commas, or "none".
func (t Trusted) String() string {
	if len(t) == 0 {
		return TrustedNone
	}
	var b strings.Builder
	for i, p := range t {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// has reports whether peer's address is in t.
func (t Trusted) has(peer net.Addr) bool {
	addr, ok := netip.AddrFromSlice(peerIP(peer))
	return ok && t.contains(addr)
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
