//go:build chaos

package chaos

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// fastGrowth is a run of node workers that keep M MiB more in Buffers
// every T ms from their start (CHAOS_GROW: no heap limit stops it), in a
// memory cgroup of their own, under a steady GET load, for a fixed time:
// every worker, and every replacement, grows until the guard replaces it.
type fastGrowth struct {
	id      string
	limit   int64
	workers int
	grow    string  // CHAOS_GROW, "M,T"
	rate    int     // M MiB every T ms, in MiB/s
	drained float64 // the share of the guard's ends that must be drains, not kills (0: reported only)
}

// name is the row's scenario.
func (g fastGrowth) name() string {
	return fmt.Sprintf("node, Buffers +%d MiB/s from the start: %d MiB cgroup, %d %s, for %s",
		g.rate, g.limit>>20, g.workers, plural(g.workers, "worker"), g.length())
}

// length is how long the growth runs: 60 s, 10 s with -short (20 s with
// two workers, for ten or more recycles: one kill in fewer than ten is
// already more than 10 %).
func (g fastGrowth) length() time.Duration {
	switch {
	case !testing.Short():
		return 60 * time.Second
	case g.workers > 1:
		return 20 * time.Second
	default:
		return 10 * time.Second
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// TestFastGrowthDrainedNotOOMKilled runs the growth at 80, 160 and 300
// MiB/s in 256 MiB with 1 worker (no spare slot: each worker stops before
// its replacement starts), and at 80 MiB/s in 1 GiB with 2 workers (a
// spare slot: the replacement starts first). The kernel's OOM killer never
// runs: percore's guard recycles or kills first, and percore keeps running.
// With the spare slot, at least 90 % of the workers the guard ends are
// drained (recycled, then stopped with the stop signal), not killed. Failed
// requests are counted. Each runs 60 s (10–20 s with -short).
func TestFastGrowthDrainedNotOOMKilled(t *testing.T) {
	for _, g := range []fastGrowth{
		{id: "4f", limit: 256 << 20, workers: 1, grow: "4,50", rate: 80},
		{id: "4g", limit: 256 << 20, workers: 1, grow: "8,50", rate: 160},
		{id: "4h", limit: 256 << 20, workers: 1, grow: "6,20", rate: 300},
		{id: "4i", limit: 1 << 30, workers: 2, grow: "4,50", rate: 80, drained: 0.9},
	} {
		t.Run(fmt.Sprintf("%dMiBps/%dMiB/%d", g.rate, g.limit>>20, g.workers), g.run)
	}
}

func (g fastGrowth) run(t *testing.T) {
	f := book.row(t, g.id, g.name())
	needNode(t)
	cg := testutil.NewMemoryCgroup(t, g.limit)
	in := launch(t, options{wrapper: cg.Wrapper(), env: []string{"CHAOS_GROW=" + g.grow},
		args: []string{"--workers", strconv.Itoa(g.workers), "--", "node", appPath("app.js")}})
	guard := in.waitLog("memory guard", 0, 10*time.Second)
	in.waitLog("worker ready", 0, 30*time.Second)
	l := startLoad(t, in.addr, stream{name: "GET /", clients: 2, req: get("/")})
	end := time.After(g.length()) // the scenario's length: there is no event to wait for
	exited := false
	select {
	case <-end:
	case <-in.exited:
		exited = true
	}
	recs := l.stop()
	oom, err := cg.OOMKills()
	if err != nil {
		t.Errorf("read the OOM kill count: %v", err)
	}
	peak, _ := cg.Peak()
	logs := in.logsMatching("", 0)
	ends := tallyEnds(workerLives(logs))

	all := count(recs, nil)
	f.requests(all)
	f.add("guard budget %vMiB, hard limit %vMiB, stop first %v", guard.m["budget_mib"], guard.m["hard_mib"], guard.m["stop_first"])
	f.add("%d workers ended by the guard: %d drained (%d recycled early, %d over budget, %d by the cgroup check; "+
		"%d stopped before their replacement was ready), %d killed (%d over the hard limit, %d by the cgroup check); "+
		"%d other ends; %d kernel OOM kills; cgroup peak %s",
		ends.drained+ends.killed, ends.drained, ends.early, ends.overBudget, ends.cgroupRecycled, ends.urged,
		ends.killed, ends.killedHard, ends.killedCgroup, ends.other, oom, mib(peak))
	f.add("growth seen by the guard %s; start-ups %s", spread(growthRates(logs), "MiB/s"), spread(startupsMS(logs), "ms"))
	if lat := latencies(recs, nil); len(lat) > 0 {
		f.add("latency p50 %s p99 %s max %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]))
	}

	if exited {
		t.Fatalf("percore exited: %v; its last lines:\n%s", in.err, in.recentStderr())
	}
	if oom != 0 || ends.kernel > 0 {
		t.Errorf("the kernel's OOM killer ran %d times (%d workers diagnosed as its victims)", oom, ends.kernel)
	}
	if ends.drained+ends.killed < 2 {
		t.Errorf("the guard ended %d workers in %s, want the growth to have been met at least twice; percore's last lines:\n%s",
			ends.drained+ends.killed, g.length(), in.recentStderr())
	}
	if share := ends.share(); g.drained > 0 && share < g.drained {
		t.Errorf("%d of %d workers the guard ended were drained (%.0f %%), want at least %.0f %%",
			ends.drained, ends.drained+ends.killed, 100*share, 100*g.drained)
	}
	if ends.other > 0 {
		t.Errorf("%d workers ended without the guard", ends.other)
	}
}

// ends counts how the workers' lives ended.
type ends struct {
	drained, killed                   int // by the guard
	early, overBudget, cgroupRecycled int // the drained ones, by the guard's first reason
	urged                             int // drained ones stopped before their replacement was ready
	killedHard, killedCgroup          int
	other                             int // crashes, and kills by anything but the guard
	kernel                            int // diagnosed as the kernel OOM killer's victims
}

// share is the drained part of the workers the guard ended.
func (e ends) share() float64 {
	if e.drained+e.killed == 0 {
		return 0
	}
	return float64(e.drained) / float64(e.drained+e.killed)
}

// tallyEnds classifies every life that ended: drained (the guard recycled
// it and it stopped by itself), killed by the guard, or otherwise.
func tallyEnds(lives map[int][]life) ends {
	var e ends
	for _, ls := range lives {
		for _, lf := range ls {
			if lf.endIdx == 0 {
				continue // still alive
			}
			switch {
			case lf.killed != "":
				e.killed++
				if strings.Contains(lf.killed, "over hard limit") {
					e.killedHard++
				} else {
					e.killedCgroup++
				}
			case lf.recycled != "" && strings.HasPrefix(lf.end, "worker stopped"):
				e.drained++
				switch {
				case strings.Contains(lf.recycled, "the cgroup holds"):
					e.cgroupRecycled++
				case strings.Contains(lf.recycled, "over budget"):
					e.overBudget++
				default:
					e.early++
				}
				if lf.urged {
					e.urged++
				}
			default:
				e.other++
			}
			if lf.oomKilled {
				e.kernel++
			}
		}
	}
	return e
}

var (
	growingRE = regexp.MustCompile(`growing (\d+)MiB/s`)
)

// growthRates are the growth rates the guard's recycle reasons give.
func growthRates(logs []logLine) []int {
	var out []int
	for _, l := range logs {
		if r, _ := l.m["reason"].(string); l.msg == "recycling worker" {
			if m := growingRE.FindStringSubmatch(r); m != nil {
				n, _ := strconv.Atoi(m[1])
				out = append(out, n)
			}
		}
	}
	return out
}

// startupsMS are the workers' start-up times, in ms.
func startupsMS(logs []logLine) []int {
	var out []int
	for _, l := range logs {
		if d, ok := l.m["startup"].(float64); ok && l.msg == "worker ready" {
			out = append(out, int(time.Duration(d)/time.Millisecond))
		}
	}
	return out
}

// spread is "p50 80, max 120 MiB/s (12)" of v.
func spread(v []int, unit string) string {
	if len(v) == 0 {
		return "none"
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return fmt.Sprintf("min %d, p50 %d, max %d %s (%d)", v[0], v[len(v)/2], v[len(v)-1], unit, len(v))
}
