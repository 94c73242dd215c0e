package proxy

import (
	"bytes"
	"net"
	"sync"
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

// Limits of the session table. A session is forgotten when its worker
// leaves the pool, or when no request carried its id for DefaultSessionIdle;
// a live polling session sends one every ping interval (25s by default),
// and one that upgraded to a WebSocket needs no routing any more.
const (
	// DefaultSessionIdle is how long a session is remembered without a
	// request carrying its id.
	DefaultSessionIdle = 2 * time.Minute
	// DefaultMaxSessions bounds the sessions remembered; when full, the
	// idle ones are swept and, if none was, one is dropped to make room.
	DefaultMaxSessions = 1 << 17
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

// sessions maps engine.io session ids to the worker that opened them. It
// is safe for concurrent use.
type sessions struct {
	idle time.Duration
	max  int

	mu    sync.Mutex // protects m and swept
	m     map[string]*session
	swept time.Time
}

// session is one remembered engine.io session.
type session struct {
	key  uint64    // the worker that opened it
	seen time.Time // when a request last carried its id
}

func newSessions(max int, idle time.Duration) *sessions {
	return &sessions{idle: idle, max: max, m: map[string]*session{}, swept: time.Now()}
}

// owner returns the worker that opened the session sid, and notes that
// the session is in use. A session idle too long is forgotten.
func (s *sessions) owner(sid []byte, now time.Time) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(sid)]
	if e == nil {
		return 0, false
	}
	if now.Sub(e.seen) > s.idle {
		delete(s.m, string(sid))
		return 0, false
	}
	e.seen = now
	return e.key, true
}

// learn remembers that the worker with key opened the session sid.
func (s *sessions) learn(sid []byte, key uint64, now time.Time) {
	if !validSID(sid) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[string(sid)]; e != nil {
		e.key, e.seen = key, now
		return
	}
	if len(s.m) >= s.max || now.Sub(s.swept) > s.idle {
		s.sweepLocked(now)
	}
	if len(s.m) >= s.max {
		for k := range s.m { // a random victim: Go's map order
			delete(s.m, k)
			break
		}
	}
	s.m[string(sid)] = &session{key: key, seen: now}
}

// sweepLocked forgets the sessions idle too long.
func (s *sessions) sweepLocked(now time.Time) {
	s.swept = now
	for k, e := range s.m {
		if now.Sub(e.seen) > s.idle {
			delete(s.m, k)
		}
	}
}

// forget drops every session of the worker with key: it left the pool.
func (s *sessions) forget(key uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if e.key == key {
			delete(s.m, k)
		}
	}
}

// len reports how many sessions are remembered.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
