//go:build linux

package supervisor

import (
	"bytes"
	"os"
	"strconv"
)

// maxTree bounds how many processes of one worker's tree are read.
const maxTree = 1024

// groupMemory adds up the memory of a worker and its descendants (the
// process tree a wrapper such as npm starts) as the kernel counts it: each
// process's PSS from /proc/PID/smaps_rollup, in which a page shared by
// several processes counts a share to each, so that npm, sh and node
// sharing libraries and the node binary's code count them once in all.
// Where a process's smaps_rollup cannot be read (a kernel before 4.14, or
// a process percore may not inspect), its RSS from /proc/PID/statm counts
// instead, and the measure is MeasureRSS: that errs high, never low.
//
// Reading smaps_rollup walks the process's page tables, 20 to 50 µs per
// resident MiB (BenchmarkGroupMemory), where statm costs the same whatever
// the size (the walk of the tree's /proc files, 0.1 to 0.3 ms): the sampler
// reads PSS at most every Guard.Every and estimates it from groupRSS in
// between (see meter).
func groupMemory(pid int) (uint64, MemoryMeasure, bool) {
	total, found, allPSS := uint64(0), false, true
	var buf [4096]byte
	walkTree(pid, func(p int) {
		if n, pss, ok := processMemory(p, buf[:]); ok {
			total += n
			found = true
			allPSS = allPSS && pss
		}
	})
	if allPSS {
		return total, MeasurePSS, found
	}
	return total, MeasureRSS, found
}

// groupRSS adds up the RSS of a worker and its descendants from
// /proc/PID/statm: pages shared between processes count once per process.
func groupRSS(pid int) (uint64, bool) {
	total, found := uint64(0), false
	var buf [4096]byte
	walkTree(pid, func(p int) {
		if n, ok := residentBytes(p, buf[:]); ok {
			total += n
			found = true
		}
	})
	return total, found
}

// walkTree calls fn for pid and each of its descendants, up to maxTree
// processes. It walks the tree through /proc/PID/task/TID/children rather
// than scanning all of /proc, which costs a few reads per worker whatever
// else runs on the machine.
func walkTree(pid int, fn func(pid int)) {
	queue := []int{pid}
	for i := 0; i < len(queue) && i < maxTree; i++ {
		fn(queue[i])
		queue = appendChildren(queue, queue[i])
	}
}

// processMemory is the PSS of one process in bytes, or its RSS (pss false)
// where smaps_rollup cannot be read. buf is scratch space.
func processMemory(pid int, buf []byte) (n uint64, pss, ok bool) {
	if data, err := readInto("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", buf); err == nil {
		if kb, ok := field(data, "\nPss:"); ok {
			return kb << 10, true, true
		}
	}
	n, ok = residentBytes(pid, buf)
	return n, false, ok
}

// residentBytes is the RSS of one process from /proc/PID/statm.
func residentBytes(pid int, buf []byte) (uint64, bool) {
	data, err := readInto("/proc/"+strconv.Itoa(pid)+"/statm", buf)
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * uint64(os.Getpagesize()), err == nil
}

// readInto reads the start of a small file into buf, without allocating
// for its contents.
func readInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// field returns the number after name ("\nPss:") in a /proc file of
// "Name:   123 kB" lines.
func field(data []byte, name string) (uint64, bool) {
	i := bytes.Index(data, []byte(name))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(name):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[0]), 10, 64)
	return v, err == nil
}

// appendChildren appends the children of every thread of pid.
func appendChildren(dst []int, pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return dst
	}
	for _, t := range tasks {
		data, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(data) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				dst = append(dst, c)
			}
		}
	}
	return dst
}
