//go:build linux

package supervisor

import (
	"bytes"
	"os"
	"strconv"
)

// treeMemory measures the memory of a worker and its descendants (the
// process tree a wrapper such as npm starts, and the processes the worker
// started in groups or sessions of their own), and returns the tree's
// processes. It walks the tree through /proc/PID/task/TID/children rather
// than scanning all of /proc, which costs a few reads per worker whatever
// else runs on the machine. It reports false when root has ended, even if
// its pid now names another process.
//
// The RSS of each process comes from /proc/PID/statm: pages shared between
// processes count once per process. With pss, each process's PSS comes
// from /proc/PID/smaps_rollup too, as the kernel counts it: a page shared
// by several processes counts a share to each, so that npm, sh and node
// sharing libraries and the node binary's code count them once in all.
// Where a process's smaps_rollup cannot be read (a kernel before 4.14, or
// a process percore may not inspect), its RSS counts instead, and the
// measure is MeasureRSS: that errs high, never low.
//
// Reading smaps_rollup walks the process's page tables, 20 to 50 µs per
// resident MiB (BenchmarkTreeMemory), where statm costs the same whatever
// the size (the walk of the tree's /proc files, 0.1 to 0.3 ms): the sampler
// reads PSS at most every Guard.Every and estimates it from the RSS in
// between (see meter).
func treeMemory(root proc, pss bool) ([]proc, treeUse, bool) {
	if p, ok := readProc(root.pid); !ok || p.start != root.start || p.state == 'Z' {
		return nil, treeUse{}, false
	}
	var u treeUse
	found, allPSS := false, true
	var buf [4096]byte
	var tree []proc
	queue := []int{root.pid}
	for i := 0; i < len(queue) && i < maxTree; i++ {
		p, ok := readProc(queue[i])
		if !ok || p.state == 'Z' {
			continue
		}
		if rss, ok := residentBytes(p.pid, buf[:]); ok {
			u.rss += rss
			found = true
			if pss {
				n, ok := pssBytes(p.pid, buf[:])
				if !ok {
					n, allPSS = rss, false
				}
				u.pss += n
			}
		}
		tree = append(tree, p)
		queue = appendChildren(queue, p.pid)
	}
	switch {
	case !pss:
	case allPSS:
		u.measure = MeasurePSS
	default:
		u.measure = MeasureRSS
	}
	return tree, u, found
}

// pssBytes is the PSS of one process from /proc/PID/smaps_rollup. buf is
// scratch space.
func pssBytes(pid int, buf []byte) (uint64, bool) {
	data, err := readInto("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", buf)
	if err != nil {
		return 0, false
	}
	kb, ok := field(data, "\nPss:")
	return kb << 10, ok
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
