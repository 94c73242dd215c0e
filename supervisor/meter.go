package supervisor

import "time"

// meter measures the memory of one slot's worker for the sampler, which
// owns it. PSS costs a walk of the worker's page tables, so it is read at
// most every interval; in between, the figure is the group's RSS, read
// cheaply, less the shared pages' excess seen at the last PSS reading
// (RSS - PSS). A leak grows private memory, which both count in full, so
// the estimate follows it sample by sample; pages that stop being shared
// show at the next reading.
type meter struct {
	key     uint64        // the worker measured; another starts afresh
	at      time.Time     // the last PSS reading
	excess  uint64        // RSS - PSS at that reading
	measure MemoryMeasure // how that reading was made
}

// read measures the worker with key, whose process group leader is pid, at
// now: a PSS reading when the last is older than every or was of another
// worker, else an estimate from RSS.
func (mt *meter) read(key uint64, pid int, now time.Time, every time.Duration) (uint64, MemoryMeasure, bool) {
	if mt.key == key && now.Sub(mt.at) < every {
		rss, ok := groupRSS(pid)
		if !ok {
			return 0, MeasureNone, false
		}
		return rss - min(rss, mt.excess), mt.measure, true
	}
	mem, measure, ok := groupMemory(pid)
	if !ok {
		return 0, MeasureNone, false
	}
	rss, _ := groupRSS(pid)
	*mt = meter{key: key, at: now, excess: rss - min(rss, mem), measure: measure}
	return mem, measure, true
}
