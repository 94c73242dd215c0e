package machine

import (
	"fmt"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// maxCPUID bounds the CPU numbers accepted in a CPU list; Linux supports at
// most 8192 CPUs, so anything far beyond is a corrupt file.
const maxCPUID = 1 << 16

// defaultCFSPeriod is the period cpu.max implies when it gives only a quota.
const defaultCFSPeriod = 100000

// quota is a CFS bandwidth limit: quota microseconds of CPU time per period.
type quota struct {
	quota, period int64
}

// cpus returns the limit in CPUs.
func (q quota) cpus() float64 { return float64(q.quota) / float64(q.period) }

// ceil returns the limit rounded up to whole CPUs.
func (q quota) ceil() int64 {
	n := q.quota / q.period
	if q.quota%q.period != 0 {
		n++
	}
	return n
}

// parseCPUMax parses a cgroup v2 cpu.max file: "max [period]" means no
// limit (limited is false), "quota [period]" a limit.
func parseCPUMax(s string) (q quota, limited bool, err error) {
	f := strings.Fields(s)
	if len(f) < 1 || len(f) > 2 {
		return quota{}, false, fmt.Errorf("want \"quota period\", got %q", s)
	}
	q.period = defaultCFSPeriod
	if len(f) == 2 {
		if q.period, err = positiveInt(f[1]); err != nil {
			return quota{}, false, fmt.Errorf("period: %w", err)
		}
	}
	if f[0] == "max" {
		return quota{}, false, nil
	}
	if q.quota, err = positiveInt(f[0]); err != nil {
		return quota{}, false, fmt.Errorf("quota: %w", err)
	}
	return q, true, nil
}

// parseCFSQuota parses the cgroup v1 pair cpu.cfs_quota_us and
// cpu.cfs_period_us; a quota of -1 means no limit.
func parseCFSQuota(quotaText, periodText string) (q quota, limited bool, err error) {
	if strings.TrimSpace(quotaText) == "-1" {
		return quota{}, false, nil
	}
	if q.quota, err = positiveInt(quotaText); err != nil {
		return quota{}, false, fmt.Errorf("quota: %w", err)
	}
	if q.period, err = positiveInt(periodText); err != nil {
		return quota{}, false, fmt.Errorf("period: %w", err)
	}
	return q, true, nil
}

// positiveInt parses a decimal integer greater than zero.
func positiveInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("not positive: %d", n)
	}
	return n, nil
}

// parseCPUList counts the CPUs in a list such as "0-3,6". Overlapping
// entries are counted once.
func parseCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty CPU list")
	}
	var spans [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, err := parseCPURange(part)
		if err != nil {
			return 0, err
		}
		spans = append(spans, [2]int{lo, hi})
	}
	return countSpans(spans), nil
}

// parseCPURange parses "n" or "lo-hi".
func parseCPURange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = cpuID(a); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = cpuID(b); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("CPU range %q runs backwards", s)
	}
	return lo, hi, nil
}

// cpuID parses one CPU number.
func cpuID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxCPUID {
		return 0, fmt.Errorf("bad CPU number %q", s)
	}
	return n, nil
}

// countSpans counts the integers covered by inclusive spans.
func countSpans(spans [][2]int) int {
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	n, next := 0, 0
	for _, sp := range spans {
		lo := max(sp[0], next)
		if sp[1] >= lo {
			n += sp[1] - lo + 1
			next = sp[1] + 1
		}
	}
	return n
}

// cpuResult is what CPU detection found.
type cpuResult struct {
	cpus   int
	quota  float64
	source string
}

// detectCPU combines the affinity mask, the cpuset and the CFS quotas.
func (rd *reader) detectCPU(cg cgroups, affinity func() (int, error)) cpuResult {
	count, src := rd.cpuCount(cg, affinity)
	q, qsrc, limited := rd.cpuQuota(cg)
	if !limited || q.ceil() > int64(count) {
		return cpuResult{cpus: count, quota: float64(count), source: src}
	}
	return cpuResult{cpus: max(int(q.ceil()), 1), quota: q.cpus(), source: qsrc}
}

// cpuCount returns how many CPUs the process may run on: its affinity mask,
// or its cpuset when that is smaller.
func (rd *reader) cpuCount(cg cgroups, affinity func() (int, error)) (int, string) {
	count, src := 0, "affinity"
	if n, err := affinity(); err != nil {
		rd.note("CPU affinity: %v", err)
	} else if n > 0 {
		count = n
	}
	if n := rd.cpusetCount(cg); n > 0 && (count == 0 || n < count) {
		count, src = n, "cpuset"
	}
	if count == 0 {
		count, src = runtime.NumCPU(), "runtime.NumCPU"
		rd.note("no affinity or cpuset count; using runtime.NumCPU() = %d", count)
	}
	return count, src
}

// cpusetCount counts the CPUs of the nearest cgroup with a cpuset file.
func (rd *reader) cpusetCount(cg cgroups) int {
	h, ok := cg.ctrl[ctrlCpuset]
	if !ok {
		return 0
	}
	files := []string{"cpuset.effective_cpus", "cpuset.cpus"}
	if h.version == 2 {
		files = []string{"cpuset.cpus.effective"}
	}
	for _, lv := range rd.levels(h) {
		for _, f := range files {
			p := path.Join(lv.dir, f)
			s, found := rd.readOptional(p)
			if !found {
				continue
			}
			n, err := parseCPUList(s)
			if err != nil {
				rd.note("%s: %v; ignored", p, err)
				continue
			}
			return n
		}
	}
	return 0
}

// cpuQuota returns the tightest CFS quota along the cpu hierarchy.
func (rd *reader) cpuQuota(cg cgroups) (quota, string, bool) {
	h, ok := cg.ctrl[ctrlCPU]
	if !ok {
		return quota{}, "", false
	}
	var best quota
	var src string
	levels := rd.levels(h)
	for i, lv := range levels {
		q, file, limited := rd.levelQuota(h.version, lv.dir)
		if limited && (src == "" || q.cpus() < best.cpus()) {
			best, src = q, source(h.version, file, levels, i)
		}
	}
	return best, src, src != ""
}

// levelQuota reads the quota of one cgroup directory.
func (rd *reader) levelQuota(version int, dir string) (quota, string, bool) {
	if version == 2 {
		p := path.Join(dir, "cpu.max")
		s, found := rd.readOptional(p)
		if !found {
			return quota{}, "", false
		}
		q, limited, err := parseCPUMax(s)
		if err != nil {
			rd.note("%s: %v; ignored", p, err)
		}
		return q, "cpu.max", limited
	}
	qp, pp := path.Join(dir, "cpu.cfs_quota_us"), path.Join(dir, "cpu.cfs_period_us")
	qs, found := rd.readOptional(qp)
	if !found {
		return quota{}, "", false
	}
	ps, _ := rd.readOptional(pp)
	q, limited, err := parseCFSQuota(qs, ps)
	if err != nil {
		rd.note("%s: %v; ignored", qp, err)
	}
	return q, "cpu.cfs_quota_us", limited
}
