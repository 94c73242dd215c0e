package main

import (
	"slices"
	"testing"

	"github.com/percore/percore/supervisor"
)

func TestRSSHistoryKeepsTheLastPointsInOrder(t *testing.T) {
	h := newRSSHistory(nil)
	for i := 1; i <= rssPoints+5; i++ {
		h.sample([]supervisor.WorkerStatus{{ID: 0, RSS: uint64(i)}, {ID: 1, RSS: 7}})
	}
	got := h.points(0)
	if len(got) != rssPoints || got[0] != 6 || got[len(got)-1] != rssPoints+5 || !slices.IsSorted(got) {
		t.Fatalf("slot 0 history = %v, want 6..%d", got, rssPoints+5)
	}
	h.sample([]supervisor.WorkerStatus{{ID: 0, RSS: 1}}) // slot 1 scaled away
	if got := h.points(1); len(got) != 0 {
		t.Fatalf("a slot scaled away keeps %v", got)
	}
}
