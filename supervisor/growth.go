package supervisor

import (
	"slices"
	"time"
)

// minSlopeSpan is the shortest time a growth rate is measured over: a
// runtime allocates in steps, so closer samples read as bursts and pauses.
const minSlopeSpan = 80 * time.Millisecond

// growth follows the resident memory of one worker, or of the memory
// cgroup, from successive samples.
type growth struct {
	rss    uint64    // the last sample
	at     time.Time // when it was taken
	base   uint64    // the sample the next slope is measured from
	baseAt time.Time
	smooth float64 // bytes per second, the slopes averaged (each half the last)
	rate   float64 // bytes per second: the last slope or the average, whichever is larger; 0 when not growing
	known  bool    // a slope has been measured
}

// add records a sample of rss bytes taken at at.
func (gr *growth) add(rss uint64, at time.Time) {
	gr.rss, gr.at = rss, at
	if gr.baseAt.IsZero() {
		gr.base, gr.baseAt = rss, at
		return
	}
	span := at.Sub(gr.baseAt)
	if span < minSlopeSpan {
		return
	}
	slope := (float64(rss) - float64(gr.base)) / span.Seconds()
	gr.smooth = (gr.smooth + slope) / 2
	gr.rate = max(gr.smooth, slope, 0)
	gr.base, gr.baseAt, gr.known = rss, at, true
}

// watched is what the sampler keeps of one slot's current worker.
type watched struct {
	growth
	status WorkerStatus // as of the last sample
	at     uint64       // the RSS above which it is recycled, as of the last sample
	asked  bool         // the guard asked for its recycling
	urged  bool         // the guard asked it to stop before its replacement is ready
	timed  bool         // its start-up time has been counted
}

// startupsKept is how many start-up times the guard remembers.
const startupsKept = 4

// defaultStartup is the start-up time the guard assumes before it has
// seen a worker become ready.
const defaultStartup = time.Second

// startups are the start-up times of the last workers that became ready.
type startups struct {
	last []time.Duration
}

// add records one start-up time.
func (st *startups) add(d time.Duration) {
	st.last = append(st.last, d)
	if len(st.last) > startupsKept {
		st.last = st.last[1:]
	}
}

// longest is the longest of the start-up times remembered: how long a
// replacement is expected to take to become ready.
func (st *startups) longest() time.Duration {
	if len(st.last) == 0 {
		return defaultStartup
	}
	return slices.Max(st.last)
}
