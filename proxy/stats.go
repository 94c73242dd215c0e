package proxy

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds, in seconds, of the request duration
// histogram.
var DurationBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// codeClasses are the status classes counted: 1xx to 5xx.
const codeClasses = 5

// slotStats counts the requests answered for one worker slot, across the
// workers that served in it. The counters only grow.
type slotStats struct {
	codes [codeClasses]atomic.Uint64
	lat   latencyWindow // the last seconds' answer durations
}

// stats holds the proxy's request counters and duration histogram. Recording
// is lock-free; the map of slots changes only when a slot is first seen.
type stats struct {
	mu    sync.Mutex // protects slots
	slots map[int]*slotStats
	none  slotStats // answers no worker gave: refused, unavailable

	followed atomic.Uint64 // pinned requests that went to their worker
	moved    atomic.Uint64 // pinned requests whose worker could not take them
	refused  atomic.Uint64 // engine.io handshakes refused by the per-client session rate

	buckets [len(DurationBuckets) + 1]atomic.Uint64 // the last is +Inf
	count   atomic.Uint64
	sumNano atomic.Uint64
}

func newStats() *stats { return &stats{slots: map[int]*slotStats{}} }

// forSlot returns the counters of slot, creating them once.
func (s *stats) forSlot(slot int) *slotStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.slots[slot]
	if !ok {
		st = &slotStats{}
		s.slots[slot] = st
	}
	return st
}

// record counts one answer with status for st (nil: no worker) that took d
// from the request's arrival until its response header was ready.
func (s *stats) record(st *slotStats, status int, d time.Duration) {
	if st == nil {
		st = &s.none
	}
	if c := status/100 - 1; c >= 0 && c < codeClasses {
		st.codes[c].Add(1)
	}
	st.lat.add(time.Now(), d)
	sec := d.Seconds()
	i := sort.SearchFloat64s(DurationBuckets[:], sec)
	s.buckets[i].Add(1)
	s.count.Add(1)
	s.sumNano.Add(uint64(d))
}

// SlotCounts is the requests answered for one worker slot by status class.
// A request percore refuses counts as 4xx whatever its status: the 505 of an
// HTTP version percore does not speak is the client's fault too.
type SlotCounts struct {
	Slot  int                 // -1: answered by percore with no worker
	Codes [codeClasses]uint64 // index 0 is 1xx, 4 is 5xx
}

// Histogram is a snapshot of the request duration histogram.
type Histogram struct {
	Buckets [len(DurationBuckets)]uint64 // cumulative counts at DurationBuckets
	Count   uint64
	Sum     float64 // seconds
}

// Counts returns the request counters of every slot seen so far.
func (p *Pool) Counts() []SlotCounts {
	s := p.stats
	s.mu.Lock()
	out := make([]SlotCounts, 0, len(s.slots)+1)
	for slot, st := range s.slots {
		out = append(out, snapshotCounts(slot, st))
	}
	s.mu.Unlock()
	out = append(out, snapshotCounts(-1, &s.none))
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}

func snapshotCounts(slot int, st *slotStats) SlotCounts {
	c := SlotCounts{Slot: slot}
	for i := range st.codes {
		c.Codes[i] = st.codes[i].Load()
	}
	return c
}

// Durations returns the request duration histogram.
func (p *Pool) Durations() Histogram {
	s := p.stats
	var h Histogram
	var cum uint64
	for i := range DurationBuckets {
		cum += s.buckets[i].Load()
		h.Buckets[i] = cum
	}
	h.Count = s.count.Load()
	h.Sum = float64(s.sumNano.Load()) / 1e9
	return h
}

// SlotTraffic returns the requests in flight and the requests served by the
// workers of one slot that are still routed. A draining worker no longer
// counts.
func (p *Pool) SlotTraffic(slot int) (inflight int64, requests uint64) {
	for _, b := range *p.backends.Load() {
		if b.slot == slot {
			inflight += b.inflight.Load()
			requests += b.requests.Load()
		}
	}
	return inflight, requests
}

// pinned counts a request's pin outcome.
func (s *stats) pinned(o pinOutcome) {
	switch o {
	case pinFollowed:
		s.followed.Add(1)
	case pinMoved:
		s.moved.Add(1)
	}
}

// StickyCounts are the counters of sticky routing: engine.io sessions and
// --affinity.
type StickyCounts struct {
	Affinity string // the affinity mode, as ParseAffinity reads it
	Followed uint64 // pinned requests that went to their worker
	Moved    uint64 // pinned requests that went elsewhere: their worker was draining, ejected, full or gone
	Sessions int    // engine.io sessions remembered now
	// Evicted counts the engine.io sessions forgotten, by reason.
	Evicted SessionEvictions
	// Refused counts the engine.io handshakes refused, not forwarded,
	// because their client was over its session rate (Config.SessionRate).
	Refused uint64
}

// Sticky returns the counters of sticky routing. It forgets the engine.io
// sessions idle too long, so that Sessions counts live ones.
func (p *Pool) Sticky() StickyCounts {
	pol := p.policy.Load()
	return StickyCounts{Affinity: pol.affinity.String(), Followed: p.stats.followed.Load(),
		Moved: p.stats.moved.Load(), Sessions: pol.sessions.count(time.Now()),
		Evicted: pol.sessions.evictions(), Refused: p.stats.refused.Load()}
}
