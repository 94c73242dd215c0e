//go:build linux

package supervisor

import (
	"bytes"
	"os"
	"strconv"
)

// treeRSS adds up the resident memory of a worker and its descendants
// (the process tree a wrapper such as npm starts, and the processes the
// worker started in groups or sessions of their own), from
// /proc/PID/statm, and returns the tree's processes. It walks the tree
// through /proc/PID/task/TID/children rather than scanning all of /proc,
// which costs a few reads per worker each second whatever else runs on the
// machine. Pages shared between processes count once per process, so the
// figure errs high, never low. It reports false when root has ended, even
// if its pid now names another process.
func treeRSS(root proc) ([]proc, uint64, bool) {
	if p, ok := readProc(root.pid); !ok || p.start != root.start || p.state == 'Z' {
		return nil, 0, false
	}
	page := uint64(os.Getpagesize())
	total, found := uint64(0), false
	var tree []proc
	queue := []int{root.pid}
	for i := 0; i < len(queue) && i < maxTree; i++ {
		p, ok := readProc(queue[i])
		if !ok || p.state == 'Z' {
			continue
		}
		if pages, ok := residentPages(p.pid); ok {
			total += pages * page
			found = true
		}
		tree = append(tree, p)
		queue = appendChildren(queue, p.pid)
	}
	return tree, total, found
}

func residentPages(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	return n, err == nil
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
