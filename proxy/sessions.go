package proxy

import (
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/cpu"
)

// Limits of the session table. A session is forgotten when its worker
// leaves the pool, or when no request carried its id for DefaultSessionIdle;
// a live polling session sends one every ping interval (25s by default),
// and one that upgraded to a WebSocket needs no routing any more.
const (
	// DefaultSessionIdle is how long a session is remembered without a
	// request carrying its id.
	DefaultSessionIdle = 2 * time.Minute
	// DefaultMaxSessions bounds the sessions remembered; when full, the
	// one no request carried for the longest is dropped to make room.
	DefaultMaxSessions = 1 << 17
)

// The shape of the table. Each shard is one lock, one map and one list in
// order of use: a handshake or a poll locks one shard, so they do not queue
// behind each other, and does a fixed amount of work whatever the fill.
const (
	// maxSessionShards is the number of shards of a large table.
	maxSessionShards = 64
	// minShardSessions is the smallest share of a shard: a small table
	// has fewer shards, down to one, so its order of eviction is exact.
	minShardSessions = 256
	// expirePerLearn bounds the idle sessions one handshake forgets: more
	// than the one it adds, so idle ones never pile up, and few enough
	// that no handshake pays for a long quiet spell.
	expirePerLearn = 2
)

// evictReason is why the table forgot a session.
type evictReason uint8

// The reasons a session is forgotten.
const (
	evictExpired    evictReason = iota // no request carried its id for the idle limit
	evictCapacity                      // the table was full and it was the least recently seen
	evictWorkerGone                    // its worker left the pool
	evictReasons                       // the number of reasons
)

// String names the reason as /metrics labels it.
func (r evictReason) String() string {
	switch r {
	case evictExpired:
		return "expired"
	case evictCapacity:
		return "capacity"
	case evictWorkerGone:
		return "worker_gone"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// SessionEvictions counts the engine.io sessions percore forgot, by reason.
type SessionEvictions struct {
	Expired    uint64 // no request carried the session's id for DefaultSessionIdle
	Capacity   uint64 // dropped, the least recently seen, to make room in a full table
	WorkerGone uint64 // the session's worker left the pool
}

// sessions maps engine.io session ids to the worker that opened them: a
// table of at most max sessions, sharded by a hash of the id. Each shard
// keeps its sessions in order of the last request that carried them, so
// the one to forget is at the end of its list: the least recently seen,
// whether it expired or the shard is full. It is safe for concurrent use.
//
// A session is known by a 64-bit hash of its id, seeded at random, not by
// the id itself: ids never need to be read back, and the table then holds
// at most 64 bytes a session and nothing the garbage collector scans. Two of
// 131072 sessions share a hash once in about 2^31 fills of the table; the
// later one then takes the earlier one's place, whose next poll goes to a
// worker that answers 400, and its client reconnects. A forged id that
// happened to match would be sent to a worker that answers the same.
type sessions struct {
	idle   int64     // nanoseconds
	epoch  time.Time // times are kept as nanoseconds since, on the monotonic clock
	seed   maphash.Seed
	shards []sessionShard // a power of two of them
}

// sessionShard is one lock's share of the table.
type sessionShard struct {
	mu      sync.Mutex // protects the fields below
	list    lru[session]
	evicted [evictReasons]uint64
	visited uint64 // entries examined to expire or evict one: the work beyond the map's
	_       cpu.CacheLinePad
}

// session is one remembered engine.io session.
type session struct {
	owner uint64 // the key of the worker that opened it
	seen  int64  // when a request last carried its id, in nanoseconds since epoch
}

// newSessions returns a table of at most max sessions, each remembered for
// idle without a request.
func newSessions(max int, idle time.Duration) *sessions {
	n := maxSessionShards
	for n > 1 && max/n < minShardSessions {
		n /= 2
	}
	s := &sessions{idle: int64(idle), epoch: time.Now(), seed: maphash.MakeSeed(), shards: make([]sessionShard, n)}
	for i := range s.shards {
		share := max / n
		if i < max%n {
			share++
		}
		s.shards[i].list = newLRU[session](share)
	}
	return s
}

// clock turns now into the table's time.
func (s *sessions) clock(now time.Time) int64 { return int64(now.Sub(s.epoch)) }

// locate returns the hash of sid and its shard.
func (s *sessions) locate(sid []byte) (uint64, *sessionShard) {
	h := maphash.Bytes(s.seed, sid)
	return h, &s.shards[h&uint64(len(s.shards)-1)]
}

// owner returns the worker that opened the session sid, and notes that
// the session is in use. A session idle too long is forgotten. It does not
// allocate.
func (s *sessions) owner(sid []byte, now time.Time) (uint64, bool) {
	h, sh := s.locate(sid)
	t := s.clock(now)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.list.find(h)
	if i == noEntry {
		return 0, false
	}
	e := sh.list.at(i)
	if t-e.val.seen > s.idle {
		sh.drop(i, evictExpired)
		return 0, false
	}
	e.val.seen = t
	sh.list.touch(i)
	return e.val.owner, true
}

// learn remembers that the worker with key opened the session sid. It
// forgets up to expirePerLearn idle sessions of sid's shard and, when the
// shard is still full, its least recently seen one.
func (s *sessions) learn(sid []byte, key uint64, now time.Time) {
	if !validSID(sid) {
		return
	}
	h, sh := s.locate(sid)
	t := s.clock(now)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i := sh.list.find(h); i != noEntry {
		sh.list.at(i).val = session{owner: key, seen: t}
		sh.list.touch(i)
		return
	}
	sh.expire(t, s.idle, expirePerLearn)
	if sh.list.full() {
		i := sh.list.oldest()
		sh.visited++
		why := evictCapacity
		if t-sh.list.at(i).val.seen > s.idle {
			why = evictExpired
		}
		sh.drop(i, why)
	}
	sh.list.add(h, session{owner: key, seen: t})
}

// expire forgets the shard's sessions idle too long at t, the least
// recently seen first, at most limit of them (negative: all).
func (sh *sessionShard) expire(t, idle int64, limit int) {
	for n := 0; n != limit; n++ {
		i := sh.list.oldest()
		if i == noEntry {
			return
		}
		sh.visited++
		if t-sh.list.at(i).val.seen <= idle {
			return
		}
		sh.drop(i, evictExpired)
	}
}

// drop forgets the session at i for the reason why.
func (sh *sessionShard) drop(i int32, why evictReason) {
	sh.list.remove(i)
	sh.evicted[why]++
}

// forget drops every session of the worker with key: it left the pool.
// It walks the whole table, a shard at a time, which is fine for an event
// as rare as a worker's end.
func (s *sessions) forget(key uint64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := sh.list.head; j != noEntry; {
			e := sh.list.at(j)
			next := e.next
			if e.val.owner == key {
				sh.drop(j, evictWorkerGone)
			}
			j = next
		}
		sh.mu.Unlock()
	}
}

// count forgets the sessions idle too long at now and reports how many
// remain. Each session expires once, so this work is paid for by the
// handshakes that added them.
func (s *sessions) count(now time.Time) int {
	t := s.clock(now)
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.expire(t, s.idle, -1)
		n += sh.list.len()
		sh.mu.Unlock()
	}
	return n
}

// evictions returns the sessions forgotten so far, by reason.
func (s *sessions) evictions() SessionEvictions {
	var n [evictReasons]uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for r, c := range sh.evicted {
			n[r] += c
		}
		sh.mu.Unlock()
	}
	return SessionEvictions{Expired: n[evictExpired], Capacity: n[evictCapacity], WorkerGone: n[evictWorkerGone]}
}

// work returns the entries and index slots examined so far, to find,
// expire and evict sessions: what a handshake costs beyond hashing its id.
func (s *sessions) work() uint64 {
	var n uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.visited + sh.list.probes
		sh.mu.Unlock()
	}
	return n
}
