package proxy

import (
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/cpu"
)

// The per-client cap on new engine.io sessions. Each handshake opens a
// session on a worker and an entry in the session table; without a cap,
// one client fills the table in under two minutes and pushes out everyone
// else's sessions.
//
// The default, 50 a second with bursts of 100: a browser tab opens one
// session, and one more per reconnection (socket.io waits 1 to 5 s between
// tries); the namespaces of a page share it. A NAT or an office proxy
// shows many users as one address: 100 of them reconnecting at once after
// a deploy pass in one burst, and at 50 a second a NAT of thousands of
// users who each open a session every minute or so never meets the cap.
// One address at the cap holds about 50 × 120 s = 6,000 sessions that
// never poll (5% of the table), and pushing out live sessions, which poll
// every 25 s, takes 131,072 handshakes within 25 s: about 100 addresses.
const (
	// DefaultSessionRate is the engine.io sessions a second one client
	// address may open, sustained.
	DefaultSessionRate = 50
	// maxRatePeers bounds the addresses the cap remembers. An address
	// needs remembering only while its bucket is not full again: two
	// seconds after its last handshake at the default rate, during which
	// the proxy could not take more than a few thousand handshakes.
	maxRatePeers = 1 << 14
	// ratePeerShards spreads the addresses over that many locks.
	ratePeerShards = 16
	// restPerAllow bounds the addresses one handshake forgets because
	// their buckets are full again, as expirePerLearn does for sessions.
	restPerAllow = 2
)

// sessionRate is a token bucket per client address, kept as the
// theoretical arrival time of the generic cell rate algorithm (ITU-T
// I.371): one number a client, its next handshake's due time, which a
// handshake moves one interval on; a handshake more than the burst's
// worth of intervals ahead of its due time is refused. The addresses are
// kept in LRU tables of bounded size, so every call does a bounded amount
// of work. It is safe for concurrent use.
type sessionRate struct {
	interval  int64     // nanoseconds a session at the sustained rate
	tolerance int64     // how far due times may run ahead of now: (burst - 1) intervals
	epoch     time.Time // times are kept as nanoseconds since, on the monotonic clock
	seed      maphash.Seed
	shards    [ratePeerShards]rateShard
}

// rateShard is one lock's share of the addresses.
type rateShard struct {
	mu   sync.Mutex // protects list
	list lru[int64] // an address's key → the due time of its next handshake
	_    cpu.CacheLinePad
}

// newSessionRate returns a cap of rate sessions a second per address,
// with bursts of burst, remembering up to peers addresses.
func newSessionRate(rate, burst, peers int) *sessionRate {
	interval := int64(time.Second) / int64(rate)
	r := &sessionRate{interval: interval, tolerance: int64(burst-1) * interval, epoch: time.Now(), seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].list = newLRU[int64](max(peers/ratePeerShards, 1))
	}
	return r
}

// allow takes one session for the address with key at now. When the
// address is over its rate, it returns false and how long until its next
// session would be allowed.
func (r *sessionRate) allow(key uint64, now time.Time) (time.Duration, bool) {
	t := int64(now.Sub(r.epoch))
	sh := &r.shards[key&(ratePeerShards-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.forgetRested(t)
	due := t
	i := sh.list.find(key)
	if i != noEntry {
		due = max(sh.list.at(i).val, t)
		sh.list.touch(i)
	}
	if due-t > r.tolerance {
		return time.Duration(due - r.tolerance - t), false
	}
	if i == noEntry {
		if sh.list.full() {
			// The least recently seen address starts over with a full
			// bucket; forgetRested keeps this for when the table is full
			// of addresses active in the last seconds.
			sh.list.remove(sh.list.oldest())
		}
		i = sh.list.add(key, 0)
	}
	sh.list.at(i).val = due + r.interval
	return 0, true
}

// forgetRested drops up to restPerAllow of the least recently seen
// addresses whose buckets are full again at t: the cap has nothing to
// remember of them.
func (sh *rateShard) forgetRested(t int64) {
	for range restPerAllow {
		i := sh.list.oldest()
		if i == noEntry || sh.list.at(i).val > t {
			return
		}
		sh.list.remove(i)
	}
}

// count reports how many addresses the cap remembers.
func (r *sessionRate) count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.list.len()
		sh.mu.Unlock()
	}
	return n
}

// clientKey returns the key of the request's client address, as --affinity
// ip reads it (through the trusted proxies). An IPv6 client is keyed by
// its /64, the block one subscriber gets: its other addresses are its own
// to pick. An address that does not parse is keyed as it reads. A client
// on the loopback is not capped (capped is false): it is on percore's own
// host, tests and tools, or a local proxy that does not say whom it
// forwards for, which would put every user in one bucket.
func (r *sessionRate) clientKey(h *fasthttp.RequestHeader, peer net.Addr, trusted Trusted) (key uint64, capped bool) {
	addr, ok := netip.AddrFromSlice(peerIP(peer))
	if !ok || trusted.contains(addr) {
		var buf [64]byte
		text := clientIP(buf[:0], h, peer, trusted)
		a, err := netip.ParseAddr(string(text))
		if err != nil {
			return maphash.Bytes(r.seed, text), true
		}
		addr = a
	}
	addr = addr.Unmap()
	if addr.IsLoopback() {
		return 0, false
	}
	b := addr.As16()
	if addr.Is6() {
		clear(b[8:])
	}
	return maphash.Bytes(r.seed, b[:]), true
}
