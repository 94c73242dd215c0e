package proxy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLRUAgainstAModel runs random adds, finds, touches and removes on
// small lrus and checks each against a map and a slice in order of use.
// Keys that share their top bits pile up in one run of the index, so that
// deleting inside a run, and across its wrap at the end, is exercised.
func TestLRUAgainstAModel(t *testing.T) {
	for _, keys := range []struct {
		name string
		gen  func(r *rand.Rand) uint64
	}{
		{"uniform", func(r *rand.Rand) uint64 { return r.Uint64() }},
		{"clustered", func(r *rand.Rand) uint64 { return uint64(r.IntN(3))<<62 | uint64(r.IntN(1<<20)) }},
		{"at the end", func(r *rand.Rand) uint64 { return ^uint64(0) - uint64(r.IntN(1<<20)) }},
	} {
		t.Run(keys.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			const max = 40
			l := newLRU[int](max)
			var order []uint64 // the model: most recently used first
			vals := map[uint64]int{}
			for step := range 20000 {
				k := keys.gen(r)
				if r.IntN(3) == 0 && len(order) > 0 {
					k = order[r.IntN(len(order))]
				}
				i := l.find(k)
				_, known := vals[k]
				if (i != noEntry) != known {
					t.Fatalf("step %d: find(%#x) = %d, model knows it: %v", step, k, i, known)
				}
				switch {
				case known && r.IntN(2) == 0:
					l.remove(i)
					delete(vals, k)
					order = slices.DeleteFunc(order, func(o uint64) bool { return o == k })
				case known:
					if got := l.at(i).val; got != vals[k] {
						t.Fatalf("step %d: value %d, want %d", step, got, vals[k])
					}
					l.touch(i)
					order = append([]uint64{k}, slices.DeleteFunc(order, func(o uint64) bool { return o == k })...)
				default:
					if l.full() {
						old := l.oldest()
						delete(vals, l.at(old).key)
						l.remove(old)
						order = order[:len(order)-1]
					}
					l.add(k, step)
					vals[k] = step
					order = append([]uint64{k}, order...)
				}
				checkLRU(t, &l, order, max)
			}
		})
	}
}

// checkLRU checks l's list, from head to tail, against order, and its
// bounds.
func checkLRU(t *testing.T, l *lru[int], order []uint64, max int) {
	t.Helper()
	var got []uint64
	prev := int32(noEntry)
	for i := l.head; i != noEntry; i = l.at(i).next {
		if l.at(i).prev != prev {
			t.Fatalf("entry %d links back to %d, not %d", i, l.at(i).prev, prev)
		}
		got = append(got, l.at(i).key)
		prev = i
	}
	if l.tail != prev || !slices.Equal(got, order) || l.len() != len(order) {
		t.Fatalf("list %x (tail %d, len %d), want %x", got, l.tail, l.len(), order)
	}
	if cap(l.ents) > max || 2*l.len() > len(l.index) && l.len() > 0 {
		t.Fatalf("%d entries in %d slots of entries and %d of index, bound %d", l.len(), cap(l.ents), len(l.index), max)
	}
}

func TestSessionsEvictLeastRecentlySeen(t *testing.T) {
	t0 := time.Now()
	s := newSessions(4, time.Minute)
	if len(s.shards) != 1 {
		t.Fatalf("a table of 4 has %d shards, want 1", len(s.shards))
	}
	for i, sid := range []string{"a", "b", "c", "d"} {
		s.learn([]byte(sid), uint64(i), t0)
	}
	if _, ok := s.owner([]byte("a"), t0.Add(time.Second)); !ok {
		t.Fatal("a is not remembered")
	}
	s.learn([]byte("e"), 9, t0.Add(2*time.Second)) // b is now the least recently seen
	s.learn([]byte("f"), 9, t0.Add(3*time.Second)) // then c
	now := t0.Add(4 * time.Second)
	for sid, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true, "f": true} {
		if _, ok := s.owner([]byte(sid), now); ok != want {
			t.Errorf("session %s remembered: %v, want %v", sid, ok, want)
		}
	}
	if ev := s.evictions(); ev != (SessionEvictions{Capacity: 2}) {
		t.Errorf("evictions %+v, want 2 for capacity", ev)
	}
}

func TestSessionsExpireIdleOnes(t *testing.T) {
	t0 := time.Now()
	s := newSessions(4, time.Minute)
	s.learn([]byte("a"), 1, t0)
	s.learn([]byte("b"), 1, t0.Add(30*time.Second))
	s.learn([]byte("c"), 1, t0.Add(61*time.Second)) // a is idle past the limit
	if n := s.count(t0.Add(61 * time.Second)); n != 2 {
		t.Errorf("%d sessions remembered, want 2", n)
	}
	if _, ok := s.owner([]byte("b"), t0.Add(91*time.Second)); ok {
		t.Error("b, idle past the limit, is still followed")
	}
	if n := s.count(t0.Add(200 * time.Second)); n != 0 {
		t.Errorf("%d sessions remembered after all went idle, want 0", n)
	}
	if ev := s.evictions(); ev != (SessionEvictions{Expired: 3}) {
		t.Errorf("evictions %+v, want 3 expired", ev)
	}
}

// TestSessionsBoundAtCapacity fills a full-size table three times over:
// it holds exactly DefaultMaxSessions, in no more memory than that needs.
func TestSessionsBoundAtCapacity(t *testing.T) {
	now := time.Now()
	s := newSessions(DefaultMaxSessions, DefaultSessionIdle)
	var buf [32]byte
	for i := range uint64(3 * DefaultMaxSessions) {
		s.learn(benchSID(buf[:0], i), i%3, now)
	}
	if n := s.count(now); n != DefaultMaxSessions {
		t.Errorf("%d sessions remembered, want %d", n, DefaultMaxSessions)
	}
	if ev := s.evictions(); ev != (SessionEvictions{Capacity: 2 * DefaultMaxSessions}) {
		t.Errorf("evictions %+v, want %d for capacity", ev, 2*DefaultMaxSessions)
	}
	ents, index := 0, 0
	for i := range s.shards {
		ents += cap(s.shards[i].list.ents)
		index += len(s.shards[i].list.index)
	}
	if ents != DefaultMaxSessions || index > 2*DefaultMaxSessions {
		t.Errorf("%d entries and %d index slots for %d sessions", ents, index, DefaultMaxSessions)
	}
	// The last quarter learned are all there, with their worker.
	for i := uint64(3*DefaultMaxSessions - DefaultMaxSessions/4); i < 3*DefaultMaxSessions; i++ {
		if k, ok := s.owner(benchSID(buf[:0], i), now); !ok || k != i%3 {
			t.Fatalf("session %d: owner %d, %v; want %d", i, k, ok, i%3)
		}
	}
}

// TestSessionsWorkPerHandshakeDoesNotGrow counts the entries and index
// slots a handshake examines, learning a session and looking it up, in a
// full table of 1,024 and of 131,072 sessions, fresh or all idle: a dozen
// or two whatever the size (an index half full takes 1.5 probes to find a
// key, 2.5 to miss one; a full table also evicts, an idle one expires two).
// The table used to sweep every session when full: 131,072 per handshake.
func TestSessionsWorkPerHandshakeDoesNotGrow(t *testing.T) {
	const handshakes = 2000
	for _, size := range []int{1 << 10, DefaultMaxSessions} {
		for _, idle := range []bool{false, true} {
			t.Run(fmt.Sprintf("size=%d/idle=%v", size, idle), func(t *testing.T) {
				t0 := time.Now()
				s := newSessions(size, DefaultSessionIdle)
				var buf [32]byte
				for i := range uint64(2 * size) {
					s.learn(benchSID(buf[:0], i), 1, t0)
				}
				now := t0
				if idle {
					now = t0.Add(DefaultSessionIdle + time.Second)
				}
				before := s.work()
				for i := range uint64(handshakes) {
					sid := benchSID(buf[:0], uint64(2*size)+i)
					s.learn(sid, 2, now)
					if k, ok := s.owner(sid, now); !ok || k != 2 {
						t.Fatalf("session %s not found after it was learned", sid)
					}
				}
				per := float64(s.work()-before) / handshakes
				t.Logf("%.2f entries and slots examined per handshake", per)
				if per > 32 {
					t.Errorf("a handshake examined %.1f entries and slots, want at most 32", per)
				}
			})
		}
	}
}
