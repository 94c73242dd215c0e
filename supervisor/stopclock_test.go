package supervisor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestStopClock follows one stop's deadlines in a bubble of fake time: the
// stop signal is due HandlerShare before the kill deadline, which ends the
// stop's ctx; a closed channel or the worker's exit end a wait first.
func TestStopClock(t *testing.T) {
	const budget = 8 * time.Second // HandlerShare: 2s
	for _, c := range []struct {
		name    string
		closeAt time.Duration // when the awaited channel closes; 0: never
		goneAt  time.Duration // when the worker exits; 0: never
		want    stopCue
		at      time.Duration
	}{
		{"drained", time.Second, 0, cueClosed, time.Second},
		{"gone", 0, 3 * time.Second, cueGone, 3 * time.Second},
		{"busy", 0, 0, cueSignal, budget - 2*time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), budget)
				defer cancel()
				clock := newStopClock(ctx, HandlerShare(budget))
				defer clock.close()
				w, ch := &worker{gone: make(chan struct{})}, make(chan struct{})
				if c.closeAt > 0 {
					time.AfterFunc(c.closeAt, func() { close(ch) })
				}
				if c.goneAt > 0 {
					time.AfterFunc(c.goneAt, func() { close(w.gone) })
				}
				if left, ok := clock.left(); !ok || left != budget {
					t.Errorf("left() = %s, %t at the start; want %s", left, ok, budget)
				}
				if got, took := clock.await(w, ch), time.Since(start); got != c.want || took != c.at {
					t.Errorf("await: cue %d after %s, want %d after %s", got, took, c.want, c.at)
				}
			})
		})
	}
}

// TestStopClockKillDeadline: a signalled worker that does not exit is
// killed at the kill deadline; one that exits meanwhile is not.
func TestStopClockKillDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		clock := newStopClock(ctx, HandlerShare(5*time.Second))
		defer clock.close()
		w := &worker{gone: make(chan struct{})}
		if clock.awaitExit(w) || time.Since(start) != 5*time.Second {
			t.Errorf("awaitExit of a worker that stays: true, or not at the deadline (%s)", time.Since(start))
		}
		if left, ok := clock.left(); !ok || left != 0 {
			t.Errorf("left() = %s, %t after the deadline; want 0", left, ok)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		clock := newStopClock(ctx, HandlerShare(5*time.Second))
		defer clock.close()
		w := &worker{gone: make(chan struct{})}
		time.AfterFunc(4*time.Second, func() { close(w.gone) })
		if !clock.awaitExit(w) {
			t.Error("awaitExit of a worker that exits before the deadline: false")
		}
	})
}

// TestStopClockFastStop: a fast stop kills HurryGrace after it began, or
// at the kill deadline when that comes first; without a deadline, the
// clock has no signal deadline and no time left to tell.
func TestStopClockFastStop(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget time.Duration // 0: no deadline
		want   time.Duration
	}{
		{"no deadline", 0, HurryGrace},
		{"far deadline", time.Minute, HurryGrace},
		{"near deadline", 1500 * time.Millisecond, 1500 * time.Millisecond}, // its signal due at 500ms
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ctx, cancel := context.WithCancelCause(context.Background())
				if c.budget > 0 {
					var stop context.CancelFunc
					ctx, stop = context.WithTimeout(ctx, c.budget)
					defer stop()
				}
				clock := newStopClock(ctx, HandlerShare(c.budget))
				defer clock.close()
				if _, ok := clock.left(); ok != (c.budget > 0) {
					t.Errorf("left() tells a deadline: %t, want %t", ok, c.budget > 0)
				}
				cancel(ErrHurry)
				w := &worker{gone: make(chan struct{})}
				if clock.await(w, make(chan struct{})) != cueCancel {
					t.Error("a fast stop does not end the wait")
				}
				if clock.awaitExit(w) || time.Since(start) != c.want {
					t.Errorf("killed after %s, want %s", time.Since(start), c.want)
				}
			})
		})
	}
}
