package machine

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// unlimitedMemory is the smallest value treated as "no limit". cgroup v1
// reports no limit as 9223372036854771712 (2^63-1 rounded down to a page),
// and no machine has 4 EiB of memory.
const unlimitedMemory = 1 << 62

// parseMemoryValue parses a cgroup memory limit in bytes: "max" (v2), -1 or
// any value of at least 2^62 means no limit (limited is false).
func parseMemoryValue(s string) (v uint64, limited bool, err error) {
	s = strings.TrimSpace(s)
	if s == "max" || s == "-1" {
		return 0, false, nil
	}
	v, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("not a byte count: %q", s)
	}
	if v >= unlimitedMemory {
		return 0, false, nil
	}
	return v, true, nil
}

// meminfo holds the /proc/meminfo fields this package uses, in bytes.
type meminfo struct {
	memTotal  uint64
	swapTotal uint64
}

// parseMeminfo parses /proc/meminfo. MemTotal is required; SwapTotal is 0
// when absent. Lines other than those two are not checked.
func parseMeminfo(s string) (meminfo, error) {
	var mi meminfo
	seen := false
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "MemTotal" && key != "SwapTotal") {
			continue
		}
		n, err := parseKB(val)
		if err != nil {
			return meminfo{}, fmt.Errorf("%s: %w", key, err)
		}
		if key == "MemTotal" {
			mi.memTotal, seen = n, true
		} else {
			mi.swapTotal = n
		}
	}
	if !seen || mi.memTotal == 0 {
		return meminfo{}, fmt.Errorf("no MemTotal")
	}
	return mi, nil
}

// parseKB parses a meminfo value such as "  24683620 kB" into bytes.
func parseKB(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
		return 0, fmt.Errorf("want \"N kB\", got %q", strings.TrimSpace(s))
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", f[0])
	}
	if len(f) == 1 {
		return n, nil
	}
	if n > math.MaxUint64/1024 {
		return 0, fmt.Errorf("too large: %s kB", f[0])
	}
	return n * 1024, nil
}

// memResult is what memory detection found.
type memResult struct {
	memory, swap             uint64
	memorySource, swapSource string
}

// detectMemory combines /proc/meminfo with the cgroup memory and swap limits.
func (rd *reader) detectMemory(cg cgroups, physMem func() (uint64, error)) (memResult, error) {
	mi, miErr := rd.meminfo(physMem)
	limit, src, limited := rd.memoryLimit(cg)
	if miErr != nil {
		if !limited {
			return memResult{}, miErr
		}
		rd.note("%v; using the cgroup limit and no swap", miErr)
	}
	var r memResult
	switch {
	case limited && (mi.memTotal == 0 || limit <= mi.memTotal):
		r.memory, r.memorySource = limit, src
	default:
		if limited {
			rd.note("%s of %s is above MemTotal; using MemTotal", src, FormatBytes(limit))
		}
		r.memory, r.memorySource = mi.memTotal, procMeminfo
	}
	r.swap, r.swapSource = rd.swap(cg, mi, r.memory)
	return r, nil
}

// meminfo reads /proc/meminfo, falling back to physMem for the total when
// the file is unusable. The error names the file when both fail.
func (rd *reader) meminfo(physMem func() (uint64, error)) (meminfo, error) {
	s, err := rd.read(procMeminfo)
	if err == nil {
		mi, perr := parseMeminfo(s)
		if perr == nil {
			return mi, nil
		}
		err = fmt.Errorf("parse %s: %w", procMeminfo, perr)
	}
	n, perr := physMem()
	if perr != nil || n == 0 {
		return meminfo{}, err
	}
	rd.note("%v; using physical memory %s and no swap", err, FormatBytes(n))
	return meminfo{memTotal: n}, nil
}

// memoryLimit returns the tightest memory limit along the memory hierarchy.
func (rd *reader) memoryLimit(cg cgroups) (uint64, string, bool) {
	h, ok := cg.ctrl[ctrlMemory]
	if !ok {
		return 0, "", false
	}
	file := "memory.limit_in_bytes"
	if h.version == 2 {
		file = "memory.max"
	}
	return rd.tightest(h, file)
}

// tightest returns the smallest limit in file along the hierarchy's levels.
// Unreadable or malformed files are noted and skipped; zero limits as well,
// since no process could run under them.
func (rd *reader) tightest(h hierarchy, file string) (uint64, string, bool) {
	levels := rd.levels(h)
	best, at, ok := rd.tightestLevel(levels, file)
	if !ok {
		return 0, "", false
	}
	return best, source(h.version, file, levels, at), true
}

// tightestLevel returns the smallest limit in file among levels and the
// index of the level that sets it.
func (rd *reader) tightestLevel(levels []level, file string) (uint64, int, bool) {
	var best uint64
	at := -1
	for i, lv := range levels {
		p := path.Join(lv.dir, file)
		s, found := rd.readOptional(p)
		if !found {
			continue
		}
		v, limited, err := parseMemoryValue(s)
		if err != nil {
			rd.note("%s: %v; ignored", p, err)
			continue
		}
		if limited && v == 0 && file != "memory.swap.max" {
			rd.note("%s: limit of 0 bytes; ignored", p)
			continue
		}
		if limited && (at < 0 || v < best) {
			best, at = v, i
		}
	}
	return best, at, at >= 0
}

// swap returns the swap the process may use, given its memory figure.
func (rd *reader) swap(cg cgroups, mi meminfo, memory uint64) (uint64, string) {
	if mi.swapTotal == 0 {
		return 0, procMeminfo
	}
	h, ok := cg.ctrl[ctrlMemory]
	if !ok {
		return mi.swapTotal, procMeminfo
	}
	if h.version == 2 {
		v, src, limited := rd.tightest(h, "memory.swap.max")
		if limited && v < mi.swapTotal {
			return v, src
		}
		return mi.swapTotal, procMeminfo
	}
	v, src, limited := rd.tightest(h, "memory.memsw.limit_in_bytes")
	if !limited {
		return mi.swapTotal, procMeminfo
	}
	switch {
	case v <= memory:
		return 0, src
	case v-memory < mi.swapTotal:
		return v - memory, src
	default:
		return mi.swapTotal, procMeminfo
	}
}
