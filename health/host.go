package health

import (
	"net/netip"
	"strings"
)

// misdirected is the body of the answer to a request for a Host the admin
// listener does not serve.
const misdirected = "misdirected request: this admin listener answers only IP addresses, " +
	"localhost and the names given with --admin-hosts\n"

// hostSet is the names the admin listener serves besides IP literals.
//
// A page of another site whose name the attacker points at percore's
// address (DNS rebinding) is same-origin with the admin listener in the
// browser, and could read /status; its requests carry the attacker's name
// as Host. Probes send an IP address (Kubernetes: the pod's), localhost
// (Docker's healthcheck), or no Host at all (HTTP/1.0).
type hostSet map[string]struct{}

// newHostSet returns localhost and names, compared without case or a
// trailing dot.
func newHostSet(names []string) hostSet {
	h := hostSet{"localhost": {}}
	for _, n := range names {
		h[normalName(n)] = struct{}{}
	}
	return h
}

// allows reports whether host, a request's Host, names this listener: none,
// an IP literal (v4 or v6, with or without a port), or one of its names.
func (h hostSet) allows(host string) bool {
	if host == "" {
		return true
	}
	name, ok := stripPort(host)
	if !ok {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if strings.HasPrefix(host, "[") {
		return false // brackets hold only an IPv6 literal
	}
	_, ok = h[normalName(name)]
	return ok
}

// stripPort returns host without its port and brackets; it reports false
// when host is malformed.
func stripPort(host string) (string, bool) {
	if rest, ok := strings.CutPrefix(host, "["); ok {
		name, port, ok := strings.Cut(rest, "]")
		if !ok {
			return "", false
		}
		if port == "" {
			return name, true
		}
		port, ok = strings.CutPrefix(port, ":")
		return name, ok && isPort(port)
	}
	if strings.Count(host, ":") > 1 {
		return host, true // a bare IPv6 literal
	}
	name, port, found := strings.Cut(host, ":")
	return name, !found || isPort(port)
}

// isPort reports whether p is a port, which RFC 3986 allows to be empty.
func isPort(p string) bool {
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(p) <= 5
}

func normalName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }
