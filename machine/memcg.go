package machine

import "path"

// MemoryCgroup is the memory cgroup whose limit binds a process: of its own
// cgroup and the ancestors it can see, the one with the smallest limit. Its
// usage counts every process below it, so that is where the kernel's OOM
// killer acts when the limit is reached.
type MemoryCgroup struct {
	Dir     string // its directory, a host path below the Detector's Root
	Version int    // 1 or 2
	Limit   uint64 // its limit in bytes when it was found
}

// MemoryCgroup finds the memory cgroup whose limit binds the process, or
// false when no memory cgroup limits it (or none can be read).
func (d Detector) MemoryCgroup() (MemoryCgroup, bool) {
	rd := &reader{root: d.Root}
	if rd.root == "" {
		rd.root = "/"
	}
	h, ok := rd.discover().ctrl[ctrlMemory]
	if !ok {
		return MemoryCgroup{}, false
	}
	file := "memory.limit_in_bytes"
	if h.version == 2 {
		file = "memory.max"
	}
	levels := rd.levels(h)
	limit, at, ok := rd.tightestLevel(levels, file)
	if !ok {
		return MemoryCgroup{}, false
	}
	return MemoryCgroup{Dir: rd.path(path.Clean(levels[at].dir)), Version: h.version, Limit: limit}, true
}
