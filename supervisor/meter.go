package supervisor

import "time"

// excessHold is how long the meter keeps the largest excess of the shared
// pages it read (see meter).
const excessHold = 10 * time.Second

// meter measures the memory of one slot's worker for the sampler, which
// owns it. PSS costs a walk of the worker's page tables, so it is read at
// most every interval; in between, the figure is the tree's RSS, read
// cheaply, less the shared pages' excess (RSS - PSS) of the PSS readings. A
// leak grows private memory, which both count in full, so the estimate
// follows it sample by sample, and so does the growth rate the guard
// measures from the samples.
//
// The excess is the largest of the readings of the last excessHold: when
// another worker sharing pages with this one exits, as a recycled worker
// does before its replacement starts, its share of those pages passes to
// this one until the replacement maps them again, and this worker's PSS
// rises for a moment while the memory cgroup's use falls. Such a rise is
// no growth of the worker's own, and must not make the guard kill it; one
// that lasts shows after excessHold.
type meter struct {
	key      uint64        // the worker measured; another starts afresh
	at       time.Time     // the last PSS reading
	measure  MemoryMeasure // how that reading was made
	excess   uint64        // RSS - PSS: the largest of the readings within excessHold
	excessAt time.Time     // when the reading of that excess was made
}

// reading is one measurement of a worker's memory.
type reading struct {
	mem     uint64
	measure MemoryMeasure
}

// read measures the worker with key at now: with a PSS reading when the
// last is older than every or was of another worker, else from its RSS.
// walk measures the worker's process tree, its PSS too when asked.
func (mt *meter) read(key uint64, now time.Time, every time.Duration, walk func(pss bool) (treeUse, bool)) (reading, bool) {
	if mt.key != key || now.Sub(mt.at) >= every {
		u, ok := walk(true)
		if !ok {
			return reading{}, false
		}
		mt.note(key, now, u.pss, u.rss, u.measure)
		return reading{mem: mt.figure(u.rss), measure: u.measure}, true
	}
	u, ok := walk(false)
	if !ok {
		return reading{}, false
	}
	return reading{mem: mt.figure(u.rss), measure: mt.measure}, true
}

// note records a PSS reading of the worker with key at now, with the RSS
// read beside it.
func (mt *meter) note(key uint64, now time.Time, pss, rss uint64, measure MemoryMeasure) {
	excess := rss - min(rss, pss)
	if mt.key != key {
		*mt = meter{}
	}
	if mt.excessAt.IsZero() || excess >= mt.excess || now.Sub(mt.excessAt) >= excessHold {
		mt.excess, mt.excessAt = excess, now
	}
	mt.key, mt.at, mt.measure = key, now, measure
}

// figure is the worker's memory when its tree's RSS is rss.
func (mt *meter) figure(rss uint64) uint64 { return rss - min(rss, mt.excess) }
