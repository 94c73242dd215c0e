package supervisor

import (
	"testing"
	"time"
)

// TestMeterHoldsTheLargestExcess: a worker's figure is its RSS less the
// largest excess of the shared pages read within excessHold, so that the
// moment a sibling's exit passes it the sibling's share (its PSS up, its
// RSS the same) does not count as growth; growth of its own does.
func TestMeterHoldsTheLargestExcess(t *testing.T) {
	const mib = 1 << 20
	var mt meter
	at := time.Now()
	mt.note(1, at, 200*mib, 240*mib, MeasurePSS) // 40 MiB of excess
	if got := mt.figure(240 * mib); got != 200*mib {
		t.Fatalf("figure = %d MiB, want the PSS, 200", got/mib)
	}
	if got := mt.figure(250 * mib); got != 210*mib {
		t.Errorf("10 MiB of growth shows as %d MiB, want 210", got/mib)
	}
	// A sibling exits: this worker's PSS rises by 15 MiB, its RSS does not.
	mt.note(1, at.Add(time.Second), 225*mib, 250*mib, MeasurePSS)
	if got := mt.figure(250 * mib); got != 210*mib {
		t.Errorf("after a sibling's exit: %d MiB, want 210 (the larger excess held)", got/mib)
	}
	// It stays so for excessHold: then the smaller excess counts.
	mt.note(1, at.Add(excessHold+time.Second), 225*mib, 250*mib, MeasurePSS)
	if got := mt.figure(250 * mib); got != 225*mib {
		t.Errorf("a lasting change after %s: %d MiB, want 225", excessHold, got/mib)
	}
	// Another worker starts afresh.
	mt.note(2, at.Add(excessHold+2*time.Second), 50*mib, 60*mib, MeasureRSS)
	if got := mt.figure(60 * mib); got != 50*mib || mt.measure != MeasureRSS {
		t.Errorf("a new worker: %d MiB by %s, want 50 by rss", got/mib, mt.measure)
	}
	if got := mt.figure(5 * mib); got != 0 {
		t.Errorf("an RSS below the excess: %d, want 0", got)
	}
}
