package proxy

import (
	"testing"
	"time"
)

func TestLatencyBinBounds(t *testing.T) {
	for d := 4 * time.Microsecond; d < time.Minute; d = d*9/8 + time.Microsecond {
		up := latencyBinUpper(latencyBin(d))
		if up < d.Truncate(time.Microsecond) || float64(up) > float64(d)*1.26+float64(time.Microsecond) {
			t.Fatalf("%v lands in a bin up to %v", d, up)
		}
	}
	if got := latencyBin(time.Hour); got != latencyBins-1 {
		t.Fatalf("an hour lands in bin %d, want the last", got)
	}
	for us := range 64 {
		latencyBin(time.Duration(us) * time.Microsecond) // no panic on small values
	}
	if got := latencyBin(-time.Second); got != 0 {
		t.Fatalf("a negative duration lands in bin %d, want 0", got)
	}
}

func TestLatencyWindowQuantiles(t *testing.T) {
	var w latencyWindow
	now := time.Unix(1000, 0)
	for i := 0; i < 98; i++ {
		w.add(now, 10*time.Millisecond)
	}
	w.add(now, 500*time.Millisecond)
	w.add(now, 500*time.Millisecond)
	got := w.snapshot(now)
	if got.Count != 100 {
		t.Fatalf("count %d, want 100", got.Count)
	}
	if got.P50 < 10*time.Millisecond || got.P50 > 13*time.Millisecond {
		t.Fatalf("p50 %v, want about 10ms", got.P50)
	}
	if got.P99 < 500*time.Millisecond || got.P99 > 630*time.Millisecond {
		t.Fatalf("p99 %v, want about 500ms", got.P99)
	}
}

func TestLatencyWindowForgets(t *testing.T) {
	var w latencyWindow
	start := time.Unix(2000, 0)
	w.add(start, time.Second)
	if n := w.snapshot(start.Add(9 * time.Second)).Count; n != 1 {
		t.Fatalf("9 s later the window holds %d answers, want 1", n)
	}
	if got := w.snapshot(start.Add(10 * time.Second)); got.Count != 0 || got.P99 != 0 {
		t.Fatalf("10 s later the window holds %+v, want nothing", got)
	}
	// The same bucket reused ten seconds on starts empty.
	w.add(start.Add(10*time.Second), time.Millisecond)
	if got := w.snapshot(start.Add(10 * time.Second)); got.Count != 1 || got.P99 > 2*time.Millisecond {
		t.Fatalf("after reuse the window holds %+v, want one 1ms answer", got)
	}
}

func TestLatencyWindowAddDoesNotAllocate(t *testing.T) {
	var w latencyWindow
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { w.add(now, 3*time.Millisecond) }); n != 0 {
		t.Fatalf("add allocates %v times per call", n)
	}
	s := newStats()
	st := s.forSlot(0)
	if n := testing.AllocsPerRun(1000, func() { s.record(st, 200, 3*time.Millisecond) }); n != 0 {
		t.Fatalf("record allocates %v times per call", n)
	}
}

// BenchmarkLatencyWindowAdd records answers from parallel goroutines into
// one slot's window, as the proxy does; it reports 0 allocs/op.
func BenchmarkLatencyWindowAdd(b *testing.B) {
	var w latencyWindow
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Millisecond
		for pb.Next() {
			w.add(time.Now(), d)
			d += time.Microsecond
		}
	})
}

func BenchmarkLatencyWindowSnapshot(b *testing.B) {
	var w latencyWindow
	now := time.Now()
	for i := 0; i < 1000; i++ {
		w.add(now, time.Duration(i)*time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.snapshot(now)
	}
}
