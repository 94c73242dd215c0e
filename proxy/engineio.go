package proxy

import (
	"bytes"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// engine.io (the transport under socket.io) keeps each session in the
// process that opened it: a client opens one with a request on the
// engine.io path without a sid (GET /socket.io/?EIO=4&transport=polling),
// the worker answers with an open packet naming the session
// (0{"sid":"...",...}), and every later request of the session, polls,
// posts and the WebSocket upgrade, carries sid=... in its query. Any other
// worker answers those 400 "Session ID unknown". percore learns the owner
// of each session from the open packet as the answer streams through, as
// @socket.io/sticky does for Node's cluster, and routes the session's
// requests to it. Node clients keep no cookies, so a cookie could not do it.

// DefaultEnginePath is where socket.io serves engine.io, and where percore
// looks for its requests unless told another path.
const DefaultEnginePath = "/socket.io/"

const (
	// maxSIDLen bounds a session id. engine.io's own are 20 characters.
	maxSIDLen = 64
	// maxOpenScan bounds how much of a handshake's answer is scanned for
	// the open packet's sid: the packet comes first, and it is short.
	maxOpenScan = 512
)

// engineQuery inspects a request target on the engine.io path prefix: eio
// tells whether it is one (an EIO= parameter), sid is its session id, nil
// when it has none or one no session could have (too long, or characters
// engine.io never uses). It reads only the raw target, and allocates
// nothing.
func engineQuery(uri []byte, prefix string) (eio bool, sid []byte) {
	if len(prefix) == 0 || len(uri) < len(prefix) || string(uri[:len(prefix)]) != prefix {
		return false, nil
	}
	q := bytes.IndexByte(uri, '?')
	if q < 0 {
		return false, nil
	}
	rest := uri[q+1:]
	for len(rest) > 0 {
		var param []byte
		if i := bytes.IndexByte(rest, '&'); i >= 0 {
			param, rest = rest[:i], rest[i+1:]
		} else {
			param, rest = rest, nil
		}
		switch {
		case bytes.HasPrefix(param, []byte("EIO=")):
			eio = true
		case bytes.HasPrefix(param, []byte("sid=")):
			sid = param[len("sid="):]
		}
	}
	if !eio || !validSID(sid) {
		return eio, nil
	}
	return true, sid
}

// validSID reports whether s may be an engine.io session id: 1 to
// maxSIDLen characters unreserved in a URL (RFC 3986 section 2.3), so that
// the id in a query and in the open packet read the same. engine.io's
// base64id and the UUIDs apps generate fit.
func validSID(s []byte) bool {
	if len(s) == 0 || len(s) > maxSIDLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// openScan looks for the sid of an open packet in the first maxOpenScan
// bytes of a handshake's answer, as they stream through. It copies at most
// that much, in place, and never holds the body.
type openScan struct {
	buf  [maxOpenScan]byte
	n    int
	done bool
}

// feed adds the next bytes of the body and returns the sid once the open
// packet's "sid" field is complete in what was seen; nil until then, and
// after it was found or the bound passed.
func (s *openScan) feed(p []byte) []byte {
	if s.done {
		return nil
	}
	k := copy(s.buf[s.n:], p)
	s.n += k
	sid, complete := openPacketSID(s.buf[:s.n])
	if complete || s.n == len(s.buf) {
		s.done = true
		return sid
	}
	return nil
}

var sidField = []byte(`"sid":"`)

// openPacketSID finds the session id in the start of an open packet
// (engine.io 4: 0{"sid":"..."; version 3 puts a length and a colon
// before it). complete is false while more bytes could complete the
// field; a sid that is not a valid one is nil.
func openPacketSID(b []byte) (sid []byte, complete bool) {
	if !openPacketStart(b) {
		return nil, len(b) > 0
	}
	i := bytes.Index(b, sidField)
	if i < 0 {
		return nil, false
	}
	v := b[i+len(sidField):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil, len(v) > maxSIDLen
	}
	if !validSID(v[:j]) {
		return nil, true
	}
	return v[:j], true
}

// openPacketStart reports whether b may begin an open packet: "0{", or
// for engine.io 3 a decimal length, a colon and "0{". A prefix of one
// counts, so that a body arriving byte by byte is not turned down early.
func openPacketStart(b []byte) bool {
	if i := bytes.IndexByte(b[:min(len(b), 9)], ':'); i > 0 && allDigits(b[:i]) {
		b = b[i+1:]
	} else if i < 0 && len(b) <= 8 && allDigits(b) {
		return true
	}
	switch len(b) {
	case 0:
		return true
	case 1:
		return b[0] == '0'
	}
	return b[0] == '0' && b[1] == '{'
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// openSID returns the sid of the open packet at the start of a whole
// handshake answer, nil when there is none.
func openSID(body []byte) []byte {
	sid, _ := openPacketSID(body[:min(len(body), maxOpenScan)])
	return sid
}

// pin fills r from the request: the worker that opened the engine.io
// session it carries, or what the affinity mode keys on. Under
// AffinityCookie it takes percore's cookie out of the request, whatever
// pins it: the app never sees it.
func (pol *policy) pin(r *route, req *fasthttp.Request, peer net.Addr, trusted Trusted) {
	var cookieSlot int
	var hasSlot bool
	if pol.affinity.Mode == AffinityCookie {
		cookieSlot, hasSlot = takeSlotCookie(&req.Header, &pol.cookieBufs)
	}
	if eio, sid := engineQuery(req.Header.RequestURI(), pol.enginePath); eio {
		if sid != nil {
			if r.owner, r.hasOwner = pol.sessions.owner(sid, time.Now()); r.hasOwner {
				return
			}
		} else if req.Header.IsGet() {
			r.handshake = true
		}
	}
	switch pol.affinity.Mode {
	case AffinityOff:
	case AffinityCookie:
		if hasSlot {
			r.slot = cookieSlot + 1
		}
		r.cookie = true
	default:
		pol.affinity.pin(r, &req.Header, peer, trusted)
	}
}
