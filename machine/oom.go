package machine

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// OOMCounter reads how often the kernel's OOM killer has killed a process in
// the memory cgroup percore runs in (and its descendants, where its workers
// run). Comparing the count before and after a worker died by SIGKILL tells
// an OOM kill from other kills.
type OOMCounter struct {
	file  string // host path of memory.events (v2) or memory.oom_control (v1)
	Limit string // the cgroup's memory limit as text, for messages ("" if none)
}

// OOMCounter returns the counter of the process's memory cgroup, or false
// when there is none to read (no memory controller, or an old kernel whose
// files lack the oom_kill field).
func (d Detector) OOMCounter() (OOMCounter, bool) {
	rd := &reader{root: d.Root}
	cg := rd.discover()
	h, ok := cg.ctrl[ctrlMemory]
	if !ok {
		return OOMCounter{}, false
	}
	leaf := rd.levels(h)[0].dir
	name, limitName := "memory.events", "memory.max"
	if h.version == 1 {
		name, limitName = "memory.oom_control", "memory.limit_in_bytes"
	}
	c := OOMCounter{file: rd.path(path.Join(leaf, name))}
	if _, err := c.Count(); err != nil {
		return OOMCounter{}, false
	}
	if s, ok := rd.readOptional(path.Join(leaf, limitName)); ok {
		if v, limited, err := parseMemoryValue(s); err == nil && limited {
			c.Limit = FormatBytes(v)
		}
	}
	return c, true
}

// Count returns the number of OOM kills so far.
func (c OOMCounter) Count() (uint64, error) {
	rd := &reader{root: "/"}
	s, err := rd.read(c.file)
	if err != nil {
		return 0, err
	}
	return parseOOMKill(s)
}

// parseOOMKill finds the "oom_kill N" line of memory.events or
// memory.oom_control.
func parseOOMKill(s string) (uint64, error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "oom_kill" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("oom_kill %q: %w", f[1], err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no oom_kill field")
}
