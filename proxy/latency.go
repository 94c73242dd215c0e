package proxy

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency window keeps the durations of one slot's answers over the last
// latencySeconds, one bucket per second, each a histogram with
// latencySubBins bins per doubling of the duration in microseconds. A
// quantile read from it is within a factor 2^(1/latencySubBins) (about 19%)
// of the exact one, which is what a dashboard needs; recording is a few
// atomic adds with no lock and no allocation, so every request can do it.
const (
	latencySeconds = 10
	latencySubBins = 4
	latencyOctaves = 28 // 2^28 µs is about 4.5 minutes; longer answers land in the last bin
	latencyBins    = latencyOctaves * latencySubBins
)

// latencyBucket is one second of a latency window.
type latencyBucket struct {
	second atomic.Int64 // the unix second the counts belong to
	count  atomic.Uint32
	bins   [latencyBins]atomic.Uint32
}

// latencyWindow is a fixed-size, allocation-free window of answer
// durations. It is safe for concurrent use; the zero value is empty.
type latencyWindow struct {
	buckets [latencySeconds]latencyBucket
}

// latencyBin returns the bin of a duration: 4 bins per power of two of its
// microseconds, the first octave covering 0 to 2 µs.
func latencyBin(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 0))
	if us < 2 {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // 2^exp <= us < 2^(exp+1)
	var sub int
	if exp < 2 {
		sub = int(us<<(2-exp)) & (latencySubBins - 1)
	} else {
		sub = int(us>>(exp-2)) & (latencySubBins - 1)
	}
	i := exp*latencySubBins + sub
	return min(i, latencyBins-1)
}

// latencyBinUpper returns the upper bound of bin i.
func latencyBinUpper(i int) time.Duration {
	if i < 2 {
		return time.Duration(i+1) * time.Microsecond
	}
	exp, sub := i/latencySubBins, i%latencySubBins
	// Bin i holds [2^exp * (1+sub/4), 2^exp * (1+(sub+1)/4)).
	upper := (uint64(1) << exp) * uint64(latencySubBins+sub+1) / latencySubBins
	return time.Duration(upper) * time.Microsecond
}

// add counts one answer that took d, at now.
func (w *latencyWindow) add(now time.Time, d time.Duration) {
	sec := now.Unix()
	b := &w.buckets[sec%latencySeconds]
	if old := b.second.Load(); old != sec {
		// The first answer of a new second empties its bucket. Answers
		// recorded by other goroutines while it does may be lost or land
		// in the new second: the window is a view, not an account.
		if b.second.CompareAndSwap(old, sec) {
			b.count.Store(0)
			for i := range b.bins {
				b.bins[i].Store(0)
			}
		}
	}
	b.bins[latencyBin(d)].Add(1)
	b.count.Add(1)
}

// LatencyWindow is what one slot's answers took over the last seconds.
type LatencyWindow struct {
	Seconds int           // the window's length
	Count   uint64        // answers in the window
	P50     time.Duration // upper bound of the bin holding the median; 0 when Count is 0
	P99     time.Duration
}

// snapshot sums the buckets of the last latencySeconds before now.
func (w *latencyWindow) snapshot(now time.Time) LatencyWindow {
	var bins [latencyBins]uint64
	out := LatencyWindow{Seconds: latencySeconds}
	sec := now.Unix()
	for i := range w.buckets {
		b := &w.buckets[i]
		if s := b.second.Load(); s > sec || s <= sec-latencySeconds {
			continue
		}
		for j := range b.bins {
			n := uint64(b.bins[j].Load())
			bins[j] += n
			out.Count += n
		}
	}
	out.P50 = quantile(&bins, out.Count, 0.50)
	out.P99 = quantile(&bins, out.Count, 0.99)
	return out
}

// quantile returns the upper bound of the bin holding the q-quantile.
func quantile(bins *[latencyBins]uint64, count uint64, q float64) time.Duration {
	if count == 0 {
		return 0
	}
	rank := uint64(q*float64(count-1)) + 1
	var seen uint64
	for i, n := range bins {
		seen += n
		if seen >= rank {
			return latencyBinUpper(i)
		}
	}
	return latencyBinUpper(latencyBins - 1)
}

// SlotLatency returns what the answers of one worker slot took over the last
// 10 seconds, across the workers that served in it.
func (p *Pool) SlotLatency(slot int) LatencyWindow {
	s := p.stats
	s.mu.Lock()
	st, ok := s.slots[slot]
	s.mu.Unlock()
	if !ok {
		return LatencyWindow{Seconds: latencySeconds}
	}
	return st.lat.snapshot(time.Now())
}

// Queued returns how many requests wait for a worker at its limit.
func (p *Pool) Queued() int64 {
	if l := p.lim.Load(); l != nil {
		return l.waiting.Load()
	}
	return 0
}
