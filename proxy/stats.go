package proxy

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
