package proxy

import "math/bits"

// lru is a map of 64-bit keys whose entries are also kept in a list in
// order of use, the most recently used first, so that the least recently
// used one is at hand in O(1). Every operation does a bounded amount of
// work whatever the size:
//
//   - the entries live in one slice, linked into the list by index, that
//     grows up to max entries and is then reused slot by slot: nothing is
//     allocated once it is full, and nothing holds a pointer for the
//     garbage collector to follow;
//   - the keys are found through an open-addressing index with linear
//     probing, at most half full, and deletion by backward shift (Knuth,
//     TAOCP vol. 3, 6.4, algorithm R), which leaves no tombstones: a table
//     kept full by as many deletions as insertions probes as few slots as a
//     fresh one. Go's own map marks deleted slots, and under that churn its
//     lookups of absent keys grew longer.
//
// Keys must be uniformly distributed (a seeded hash): the index uses their
// top bits as they are. It is not safe for concurrent use: its owner locks.
type lru[V any] struct {
	index      []lruSlot // a power of two of slots, at most half in use
	ents       []lruEntry[V]
	n          int // entries in use
	max        int
	free       int32  // the first unused slot of ents, linked through next; noEntry: none
	head, tail int32  // most and least recently used; noEntry when empty
	probes     uint64 // index slots examined so far: the work of the lookups
}

// lruSlot is one slot of the index: a key and where its entry is.
type lruSlot struct {
	key uint64
	at  int32 // the entry's index in ents plus one; 0: the slot is empty
}

// lruEntry is one entry of an lru.
type lruEntry[V any] struct {
	key        uint64
	val        V
	prev, next int32 // towards head and tail; noEntry: none
}

// noEntry is the index of no entry.
const noEntry = -1

// minIndex is the size of the smallest index.
const minIndex = 16

// newLRU returns an empty lru for up to max entries, max below 1<<30. It
// allocates nothing until the first add.
func newLRU[V any](max int) lru[V] {
	return lru[V]{max: max, free: noEntry, head: noEntry, tail: noEntry}
}

// len reports how many entries l holds.
func (l *lru[V]) len() int { return l.n }

// full reports whether l holds max entries: add needs a remove first.
func (l *lru[V]) full() bool { return l.n >= l.max }

// home is where key's probe starts in an index of size slots.
func home(key uint64, size int) int {
	return int(key >> (64 - bits.TrailingZeros(uint(size))))
}

// slotOf returns the index slot holding key, or the empty one that ends
// its probe, and whether key is there.
func (l *lru[V]) slotOf(key uint64) (int, bool) {
	mask := len(l.index) - 1
	for i := home(key, len(l.index)); ; i = (i + 1) & mask {
		l.probes++
		s := &l.index[i]
		if s.at == 0 {
			return i, false
		}
		if s.key == key {
			return i, true
		}
	}
}

// find returns the index of key's entry, noEntry when l has none.
func (l *lru[V]) find(key uint64) int32 {
	if l.n == 0 {
		return noEntry
	}
	i, ok := l.slotOf(key)
	if !ok {
		return noEntry
	}
	return l.index[i].at - 1
}

// at returns the entry at index i. The pointer is good until the next add.
func (l *lru[V]) at(i int32) *lruEntry[V] { return &l.ents[i] }

// oldest returns the index of the least recently used entry, noEntry when l
// is empty.
func (l *lru[V]) oldest() int32 { return l.tail }

// add puts a new entry for key, which l must not hold, at the head, and
// returns its index. l must not be full.
func (l *lru[V]) add(key uint64, val V) int32 {
	if 2*(l.n+1) > len(l.index) {
		l.rehash(max(2*len(l.index), minIndex))
	}
	e := l.free
	if e != noEntry {
		l.free = l.ents[e].next
	} else {
		l.growEntries()
		e = int32(len(l.ents))
		l.ents = l.ents[:e+1]
	}
	l.ents[e] = lruEntry[V]{key: key, val: val, prev: noEntry, next: noEntry}
	i, _ := l.slotOf(key)
	l.index[i] = lruSlot{key: key, at: e + 1}
	l.n++
	l.pushFront(e)
	return e
}

// rehash moves the index to one of size slots.
func (l *lru[V]) rehash(size int) {
	old := l.index
	l.index = make([]lruSlot, size)
	for _, s := range old {
		if s.at != 0 {
			i, _ := l.slotOf(s.key)
			l.index[i] = s
		}
	}
}

// growEntries makes room for one more entry in ents, doubling its capacity
// but never past max, so that a full lru holds no spare entries.
func (l *lru[V]) growEntries() {
	if len(l.ents) < cap(l.ents) {
		return
	}
	ents := make([]lruEntry[V], len(l.ents), min(max(2*cap(l.ents), minIndex/2), l.max))
	copy(ents, l.ents)
	l.ents = ents
}

// touch marks the entry at e as used now: it moves to the head.
func (l *lru[V]) touch(e int32) {
	if l.head == e {
		return
	}
	l.unlink(e)
	l.pushFront(e)
}

// remove takes the entry at e out of l; its slot is reused by a later add.
func (l *lru[V]) remove(e int32) {
	i, _ := l.slotOf(l.ents[e].key)
	l.deleteSlot(i)
	l.n--
	l.unlink(e)
	var zero V
	l.ents[e].val = zero
	l.ents[e].next = l.free
	l.free = e
}

// deleteSlot empties index slot i, shifting back the slots after it that
// their probe would no longer reach.
func (l *lru[V]) deleteSlot(i int) {
	mask := len(l.index) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		l.probes++
		s := l.index[j]
		if s.at == 0 {
			break
		}
		// s stays when its home is cyclically in (i, j]: its probe
		// does not pass the hole.
		h := home(s.key, len(l.index))
		if (j-h)&mask < (j-i)&mask {
			continue
		}
		l.index[i] = s
		i = j
	}
	l.index[i] = lruSlot{}
}

func (l *lru[V]) pushFront(e int32) {
	en := &l.ents[e]
	en.prev, en.next = noEntry, l.head
	if l.head != noEntry {
		l.ents[l.head].prev = e
	} else {
		l.tail = e
	}
	l.head = e
}

func (l *lru[V]) unlink(e int32) {
	en := &l.ents[e]
	if en.prev != noEntry {
		l.ents[en.prev].next = en.next
	} else {
		l.head = en.next
	}
	if en.next != noEntry {
		l.ents[en.next].prev = en.prev
	} else {
		l.tail = en.prev
	}
	en.prev, en.next = noEntry, noEntry
}
