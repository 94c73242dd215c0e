package main

import (
	"sync"
	"time"

	"github.com/percore/percore/supervisor"
)

// The RSS history keeps one point every rssStep for rssPoints points: the
// last three minutes, enough to see a leak's slope on the admin page.
const (
	rssStep   = 2 * time.Second
	rssPoints = 90
)

// rssHistory samples each worker slot's RSS, as the supervisor last
// measured it, into a ring per slot. It is a run.Group actor.
type rssHistory struct {
	snapshot func() []supervisor.WorkerStatus

	mu    sync.Mutex // protects rings
	rings map[int]*rssRing

	stop chan struct{}
	once sync.Once
}

// rssRing is one slot's history; next is where the next point goes.
type rssRing struct {
	points [rssPoints]uint64
	n      int // points written, up to rssPoints
	next   int
}

func newRSSHistory(snapshot func() []supervisor.WorkerStatus) *rssHistory {
	return &rssHistory{snapshot: snapshot, rings: map[int]*rssRing{}, stop: make(chan struct{})}
}

// run samples until interrupt.
func (h *rssHistory) run() error {
	tick := time.NewTicker(rssStep)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return nil
		case <-tick.C:
			h.sample(h.snapshot())
		}
	}
}

func (h *rssHistory) interrupt(error) { h.once.Do(func() { close(h.stop) }) }

// sample adds one point per slot; a slot scaled away is forgotten.
func (h *rssHistory) sample(slots []supervisor.WorkerStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[int]bool, len(slots))
	for _, ws := range slots {
		seen[ws.ID] = true
		r, ok := h.rings[ws.ID]
		if !ok {
			r = &rssRing{}
			h.rings[ws.ID] = r
		}
		r.points[r.next] = ws.RSS
		r.next = (r.next + 1) % rssPoints
		r.n = min(r.n+1, rssPoints)
	}
	for id := range h.rings {
		if !seen[id] {
			delete(h.rings, id)
		}
	}
}

// points returns slot's history, oldest first.
func (h *rssHistory) points(slot int) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.rings[slot]
	if !ok {
		return []uint64{}
	}
	out := make([]uint64, 0, r.n)
	start := (r.next - r.n + rssPoints) % rssPoints
	for i := 0; i < r.n; i++ {
		out = append(out, r.points[(start+i)%rssPoints])
	}
	return out
}
