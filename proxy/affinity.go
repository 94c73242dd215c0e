package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// AffinityMode is what ties a client to a worker slot besides engine.io
// sessions, which are always followed.
type AffinityMode uint8

// The affinity modes.
const (
	// AffinityOff balances every request on its own (the default).
	AffinityOff AffinityMode = iota
	// AffinityCookie routes a request by a cookie naming the worker slot,
	// which percore sets on answers to requests without a valid one.
	AffinityCookie
	// AffinityIP hashes the client's address, as resolved through the
	// trusted proxies.
	AffinityIP
	// AffinityHeader hashes the value of one request header.
	AffinityHeader
)

// String returns the mode's name as --affinity takes it.
func (m AffinityMode) String() string {
	switch m {
	case AffinityOff:
		return "off"
	case AffinityCookie:
		return "cookie"
	case AffinityIP:
		return "ip"
	case AffinityHeader:
		return "header"
	}
	return "affinity(" + strconv.Itoa(int(m)) + ")"
}

// Affinity configures sticky routing. The zero value is off.
type Affinity struct {
	Mode   AffinityMode
	Header string // the header hashed by AffinityHeader
}

// String returns a as ParseAffinity reads it.
func (a Affinity) String() string {
	if a.Mode == AffinityHeader {
		return "header:" + a.Header
	}
	return a.Mode.String()
}

// ErrAffinity is the error of ParseAffinity for an unknown mode.
var ErrAffinity = errors.New(`want off, cookie, ip or header:NAME`)

// ParseAffinity reads "off", "cookie", "ip" or "header:NAME".
func ParseAffinity(s string) (Affinity, error) {
	switch s {
	case "off":
		return Affinity{}, nil
	case "cookie":
		return Affinity{Mode: AffinityCookie}, nil
	case "ip":
		return Affinity{Mode: AffinityIP}, nil
	}
	name, ok := strings.CutPrefix(s, "header:")
	if !ok {
		return Affinity{}, fmt.Errorf("parse affinity %q: %w", s, ErrAffinity)
	}
	if name == "" || strings.IndexFunc(name, notTokenChar) >= 0 {
		return Affinity{}, fmt.Errorf("parse affinity %q: header name must be a token: %w", s, ErrAffinity)
	}
	return Affinity{Mode: AffinityHeader, Header: name}, nil
}

// notTokenChar reports a rune not allowed in a header name (RFC 9110
// section 5.6.2).
func notTokenChar(r rune) bool {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return false
	}
	return !strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// AffinityCookieName is the cookie AffinityCookie sets. Its value is the
// worker slot's number, nothing else.
const AffinityCookieName = "percore_worker"

// pinOutcome is what a pick did with a request's pin.
type pinOutcome uint8

const (
	pinNone     pinOutcome = iota // the request was not pinned
	pinFollowed                   // it went to the worker it was pinned to
	pinMoved                      // that worker could not take it: it went elsewhere
)

// String names the outcome as /metrics labels it.
func (o pinOutcome) String() string {
	switch o {
	case pinNone:
		return "none"
	case pinFollowed:
		return "followed"
	case pinMoved:
		return "moved"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// route is what ties one request to a worker. The zero value ties it to
// none. It lives on the request's stack and keeps no bytes of the request.
type route struct {
	handshake bool       // an engine.io request without a session: its answer may open one
	owner     uint64     // key of the worker holding the request's engine.io session
	hasOwner  bool       // the request carries a known session id
	slot      int        // the slot the affinity cookie names, plus one; 0: none
	hash      uint64     // the hashed affinity key, when hashed
	hashed    bool       // the request has a key to hash
	cookie    bool       // set the affinity cookie on the answer
	outcome   pinOutcome // set once a worker was acquired
}

// pinned reports whether anything ties the request to a worker.
func (r *route) pinned() bool { return r.hasOwner || r.slot != 0 || r.hashed }

// sticky is the selector of affinity: a request pinned to a worker goes
// there when that worker can take it, else where next picks, and the pin is
// then counted as moved. Requests pinned to nothing go to next directly;
// the pool skips this layer for them.
type sticky struct{ next selector }

func (s sticky) pick(c candidates, r route) choice {
	var pin *backend
	switch {
	case r.hasOwner:
		pin = c.byKey(r.owner)
	case r.slot != 0:
		pin = c.bySlot(r.slot - 1)
	case r.hashed:
		return rendezvous(&c, r.hash)
	default:
		return s.next.pick(c, r)
	}
	if pin != nil && c.usable(pin) {
		return choice{b: pin, outcome: pinFollowed}
	}
	ch := s.next.pick(c, r)
	ch.full = ch.full || c.full
	ch.outcome = pinMoved
	return ch
}

// byKey returns the worker with key, nil when it is not routed.
func (c *candidates) byKey(key uint64) *backend {
	for _, b := range c.list {
		if b.key == key {
			return b
		}
	}
	return nil
}

// bySlot returns the newest routed worker of slot, nil when there is none.
func (c *candidates) bySlot(slot int) *backend {
	var found *backend
	for _, b := range c.list {
		if b.slot == slot {
			found = b
		}
	}
	return found
}

// rendezvous picks by highest random weight (Thaler and Ravishankar's
// rendezvous hashing): each slot scores hash(key, slot), the request goes
// to the best-scoring usable worker, and it followed its pin when that is
// the best-scoring worker of all. Adding an Nth slot moves only the keys
// it wins, about 1/N; removing one moves only its own keys, each to its
// second choice. Scores depend on the slot, not the process, so the
// replacement of a worker gets its predecessor's keys back.
func rendezvous(c *candidates, hash uint64) choice {
	var top, best *backend
	var topScore, bestScore uint64
	for _, b := range c.list {
		s := slotScore(hash, b.slot)
		if top == nil || s >= topScore {
			top, topScore = b, s
		}
		if c.usable(b) && (best == nil || s >= bestScore) {
			best, bestScore = b, s
		}
	}
	ch := choice{b: best, full: c.full, outcome: pinMoved}
	if best != nil && best == top {
		ch.outcome = pinFollowed
	}
	return ch
}

// slotScore is the rendezvous weight of slot for a key's hash.
func slotScore(hash uint64, slot int) uint64 {
	return mix64(hash ^ mix64(uint64(slot)+0x9e3779b97f4a7c15))
}

// mix64 is SplitMix64's finaliser: every input bit flips about half the
// output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashKey is FNV-1a over b, finished by mix64.
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

// pin fills r from the request under mode a, AffinityIP or
// AffinityHeader: the hash of the client address or header (the policy
// reads the cookie of AffinityCookie, see takeSlotCookie). It runs after
// setForwarded, so a trusted peer's X-Forwarded-For is one list ending with
// the peer.
func (a *Affinity) pin(r *route, h *fasthttp.RequestHeader, peer net.Addr, trusted Trusted) {
	switch a.Mode {
	case AffinityIP:
		var buf [64]byte
		r.hash, r.hashed = hashKey(clientIP(buf[:0], h, peer, trusted)), true
	case AffinityHeader:
		if v := h.Peek(a.Header); len(v) > 0 {
			r.hash, r.hashed = hashKey(v), true
		}
	}
}

// maxSlotCookie bounds the slot numbers a cookie may name.
const maxSlotCookie = 1 << 16

// parseSlotCookie reads the affinity cookie's value: a slot number in
// decimal, without sign or leading zeros.
func parseSlotCookie(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n < maxSlotCookie
}

// appendSlotCookie appends the Set-Cookie value naming slot. It holds the
// slot's number only, so it tells a client nothing of the machine, and it
// lasts as long as the browser session.
func appendSlotCookie(dst []byte, slot int) []byte {
	dst = append(dst, AffinityCookieName+"="...)
	dst = strconv.AppendInt(dst, int64(slot), 10)
	return append(dst, "; Path=/; HttpOnly; SameSite=Lax"...)
}

// clientIP appends the client's address: the peer's, or when the peer is a
// trusted proxy, the rightmost address of X-Forwarded-For that is not a
// trusted proxy's (the leftmost when all are). A malformed entry is taken
// as it is: the trusted proxy wrote it.
func clientIP(dst []byte, h *fasthttp.RequestHeader, peer net.Addr, trusted Trusted) []byte {
	addr, ok := netip.AddrFromSlice(peerIP(peer))
	if !ok || !trusted.contains(addr.Unmap()) {
		return appendPeerIP(dst, peer)
	}
	list := h.Peek("X-Forwarded-For")
	var last []byte
	for len(list) > 0 {
		i := len(list) - 1
		for i >= 0 && list[i] != ',' {
			i--
		}
		entry := trimOWS(list[i+1:])
		list = list[:max(i, 0)]
		if len(entry) == 0 {
			continue
		}
		last = entry
		a, err := netip.ParseAddr(string(entry))
		if err != nil || !trusted.contains(a.Unmap()) {
			break
		}
	}
	if last == nil {
		return appendPeerIP(dst, peer)
	}
	return append(dst, last...)
}
