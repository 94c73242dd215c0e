//go:build chaos

package chaos

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStdoutFlood makes worker 0 flood its stdout (lines of 1000 bytes, up
// to 100 MB/s) while worker 1 prints a timestamped line every 100 ms and
// serves requests. The flood stalls neither the proxy (requests to worker 1
// stay fast) nor worker 1's lines (they reach percore's stdout, which the
// test reads all the time, within a bound).
func TestStdoutFlood(t *testing.T) {
	f := book.row(t, "9", "a worker floods stdout (~100 MB/s of lines)")
	needNode(t)
	phase := 8 * time.Second
	if testing.Short() {
		phase = 4 * time.Second
	}
	const workers = 2
	ticks := &tickLog{}
	var flooded atomic.Int64
	in := start(t, workers, options{
		args: []string{"--workers", strconv.Itoa(workers), "--", "node", appPath("app.js")},
		env:  []string{"CHAOS_TICK_WORKER=1"},
		onStdout: func(line []byte, at time.Time) {
			switch {
			case bytes.HasPrefix(line, []byte("flood ")):
				flooded.Add(int64(len(line)))
			case bytes.HasPrefix(line, []byte("chaos-tick ")):
				ticks.add(line, at)
			}
		},
	})
	st := in.waitReady(workers, 10*time.Second)
	var flooder, quiet int
	for _, w := range st.Workers {
		if w.ID == 0 {
			flooder = w.PID
		} else {
			quiet = w.PID
		}
	}
	l := startLoad(t, in.addr, stream{name: "GET /", clients: 4, req: get("/"), pace: 5 * time.Millisecond})
	time.Sleep(500 * time.Millisecond)
	calmFrom := l.since(time.Now())
	ticks.phase(1)
	time.Sleep(phase)
	floodFrom := l.since(time.Now())
	ticks.phase(2)
	if err := syscall.Kill(flooder, syscall.SIGUSR2); err != nil {
		t.Fatalf("start the flood in worker %d: %v", flooder, err)
	}
	floodBytes0, floodAt, cpu0 := flooded.Load(), time.Now(), procCPU(in.pid())
	time.Sleep(phase)
	floodRate := float64(flooded.Load()-floodBytes0) / time.Since(floodAt).Seconds() / 1e6
	cpu := float64(procCPU(in.pid())-cpu0) / float64(time.Since(floodAt)) * 100
	floodTo := l.since(time.Now())
	ticks.phase(3)
	recs := l.stop()

	all := count(recs, nil)
	f.requests(all)
	on := func(pid int, from, to time.Duration) func(record) bool {
		return func(r record) bool { return int(r.pid) == pid && r.start >= from && r.start < to }
	}
	calm := latencies(recs, on(quiet, calmFrom, floodFrom))
	busy := latencies(recs, on(quiet, floodFrom, floodTo))
	flooding := latencies(recs, on(flooder, floodFrom, floodTo))
	calmTicks, busyTicks := ticks.delays(1), ticks.delays(2)
	f.add("flood %.0f MB/s reached percore's stdout (percore used %.0f%% of a CPU)", floodRate, cpu)
	f.add("requests to the quiet worker: p50/p99 %s/%s without the flood (%d), %s/%s with it (%d)",
		ms(percentile(calm, 50)), ms(percentile(calm, 99)), len(calm),
		ms(percentile(busy, 50)), ms(percentile(busy, 99)), len(busy))
	f.add("to the flooding worker during the flood: p50/p99 %s/%s (%d)",
		ms(percentile(flooding, 50)), ms(percentile(flooding, 99)), len(flooding))
	f.add("quiet worker's log lines, print → percore's stdout: p50/p99/max %s/%s/%s without the flood (%d lines), %s/%s/%s with it (%d lines, longest gap %s)",
		ms(percentile(calmTicks, 50)), ms(percentile(calmTicks, 99)), ms(lastOf(calmTicks)), len(calmTicks),
		ms(percentile(busyTicks, 50)), ms(percentile(busyTicks, 99)), ms(lastOf(busyTicks)), len(busyTicks),
		ms(ticks.longestGap(2)))

	if all.failed() > 0 {
		t.Errorf("%d of %d requests failed: %s", all.failed(), all.sent, all.reasonsText())
	}
	if floodRate < 10 {
		t.Errorf("the flood reached only %.1f MB/s: the scenario did not flood", floodRate)
	}
	if len(busy) == 0 || percentile(busy, 99) > 250*time.Millisecond {
		t.Errorf("requests to the quiet worker during the flood: p99 %s over %d requests; want under 250ms",
			percentile(busy, 99), len(busy))
	}
	if want := int(phase / (200 * time.Millisecond)); len(busyTicks) < want {
		t.Errorf("%d of the quiet worker's lines arrived during the flood, want at least %d", len(busyTicks), want)
	}
	if gap := ticks.longestGap(2); gap > time.Second {
		t.Errorf("no line of the quiet worker arrived for %s during the flood", gap)
	}
	if len(busyTicks) > 0 && (percentile(busyTicks, 99) > 250*time.Millisecond || lastOf(busyTicks) > time.Second) {
		t.Errorf("the quiet worker's lines were delayed by the flood: p99 %s, max %s; want under 250ms and 1s",
			percentile(busyTicks, 99), lastOf(busyTicks))
	}
}

func lastOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}

// tickLog collects the delays of "chaos-tick <µs>" lines by phase, and
// when they arrived. It is safe for concurrent use.
type tickLog struct {
	mu      sync.Mutex // protects the fields below
	cur     int
	got     map[int][]time.Duration
	arrived map[int][]time.Time
}

func (l *tickLog) phase(p int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = p
}

func (l *tickLog) add(line []byte, at time.Time) {
	us, err := strconv.ParseInt(string(bytes.TrimSpace(line[len("chaos-tick "):])), 10, 64)
	if err != nil {
		return
	}
	d := at.Sub(time.UnixMicro(us))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.got == nil {
		l.got, l.arrived = map[int][]time.Duration{}, map[int][]time.Time{}
	}
	l.got[l.cur] = append(l.got[l.cur], d)
	l.arrived[l.cur] = append(l.arrived[l.cur], at)
}

// longestGap returns the longest time between two lines of phase p that
// followed each other.
func (l *tickLog) longestGap(p int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	ts := l.arrived[p]
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

// delays returns the sorted delays of phase p.
func (l *tickLog) delays(p int) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := slices.Clone(l.got[p])
	slices.Sort(ds)
	return ds
}
