package machine

import (
	"path"
	"strings"
)

// Paths read below the detector's root.
const (
	procCgroup    = "/proc/self/cgroup"
	procMountinfo = "/proc/self/mountinfo"
	procMeminfo   = "/proc/meminfo"
	sysCgroup     = "/sys/fs/cgroup"
)

// cgroupMode is the cgroup layout the process runs under.
type cgroupMode int

// Cgroup layouts; String gives the Resources.Cgroup value.
const (
	cgroupNone   cgroupMode = iota // no cgroup hierarchy found
	cgroupV1                       // only v1 controller hierarchies
	cgroupV2                       // only the unified hierarchy
	cgroupHybrid                   // v1 controllers plus a unified mount
)

// String returns "none", "v1", "v2" or "hybrid".
func (m cgroupMode) String() string {
	switch m {
	case cgroupV1:
		return "v1"
	case cgroupV2:
		return "v2"
	case cgroupHybrid:
		return "hybrid"
	default:
		return "none"
	}
}

// cgroups is where each controller this package reads lives.
type cgroups struct {
	mode cgroupMode
	ctrl map[string]hierarchy // keyed by ctrlCPU, ctrlCpuset, ctrlMemory
}

// discover finds the hierarchies of the cpu, cpuset and memory controllers.
func (rd *reader) discover() cgroups {
	cg := cgroups{ctrl: map[string]hierarchy{}}
	s, err := rd.read(procCgroup)
	if err != nil {
		rd.note("%v; assuming no cgroup limits", err)
		return cg
	}
	entries, err := parseCgroupFile(s)
	if err != nil {
		rd.note("%s: skipped malformed lines: %v", procCgroup, err)
	}
	mounts := rd.mounts()
	v1 := false
	for _, e := range entries {
		if e.realV1() {
			v1 = true
		}
	}
	for _, c := range []string{ctrlCPU, ctrlCpuset, ctrlMemory} {
		if h, ok := rd.v1Hierarchy(entries, mounts, c); ok {
			cg.ctrl[c] = h
		}
	}
	unified, ok := rd.v2Hierarchy(entries, mounts)
	if ok {
		rd.addV2Controllers(&cg, unified)
	}
	switch {
	case v1 && ok:
		cg.mode = cgroupHybrid
	case v1:
		cg.mode = cgroupV1
	case ok:
		cg.mode = cgroupV2
	}
	return cg
}

// mounts reads mountinfo; on failure it returns nil and discovery falls back
// to the conventional /sys/fs/cgroup layout.
func (rd *reader) mounts() []mount {
	s, err := rd.read(procMountinfo)
	if err != nil {
		rd.note("%v; assuming cgroups are mounted under %s", err, sysCgroup)
		return nil
	}
	mounts, err := parseMountinfo(s)
	if err != nil {
		rd.note("%s: skipped malformed lines: %v", procMountinfo, err)
	}
	return mounts
}

// v1Hierarchy finds the v1 hierarchy that binds controller c.
func (rd *reader) v1Hierarchy(entries []cgroupEntry, mounts []mount, c string) (hierarchy, bool) {
	for _, e := range entries {
		if e.unified() || !e.has(c) {
			continue
		}
		h := hierarchy{version: 1, path: e.path}
		if m, ok := pickMount(mounts, "cgroup", c, e.path); ok {
			h.mount, h.root = m.point, m.root
			rd.resolveEscaped(&h, c)
			return h, true
		}
		for _, dir := range []string{strings.Join(e.controllers, ","), c} {
			p := path.Join(sysCgroup, dir)
			if rd.isDir(p) {
				rd.note("no mountinfo entry for the cgroup v1 %s controller; using %s", c, p)
				h.mount, h.root = p, "/"
				return h, true
			}
		}
		rd.note("cgroup v1 %s controller is not mounted; ignoring its limits", c)
	}
	return hierarchy{}, false
}

// v2Hierarchy finds the unified hierarchy, if the process is in one.
func (rd *reader) v2Hierarchy(entries []cgroupEntry, mounts []mount) (hierarchy, bool) {
	for _, e := range entries {
		if !e.unified() {
			continue
		}
		h := hierarchy{version: 2, path: e.path}
		if m, ok := pickMount(mounts, "cgroup2", "", e.path); ok {
			h.mount, h.root = m.point, m.root
			rd.resolveEscaped(&h, "")
			return h, true
		}
		for _, p := range []string{sysCgroup, path.Join(sysCgroup, "unified")} {
			if _, err := rd.read(path.Join(p, "cgroup.controllers")); err == nil {
				rd.note("no mountinfo entry for cgroup2; using %s", p)
				h.mount, h.root = p, "/"
				return h, true
			}
		}
		rd.note("cgroup v2 hierarchy is not mounted; ignoring its limits")
	}
	return hierarchy{}, false
}

// addV2Controllers assigns to the unified hierarchy every controller that no
// v1 hierarchy binds and that the unified mount's cgroup.controllers lists.
// On hybrid hosts that file is usually empty, so nothing is assigned.
func (rd *reader) addV2Controllers(cg *cgroups, h hierarchy) {
	p := path.Join(h.mount, "cgroup.controllers")
	s, err := rd.read(p)
	if err != nil {
		rd.note("%v; ignoring cgroup v2 limits", err)
		return
	}
	enabled := strings.Fields(s)
	for _, c := range []string{ctrlCPU, ctrlCpuset, ctrlMemory} {
		if _, taken := cg.ctrl[c]; taken {
			continue
		}
		for _, x := range enabled {
			if x == c {
				cg.ctrl[c] = h
			}
		}
	}
}

// pickMount returns the mount of type fstype (with super option opt, when
// not empty) whose root contains the cgroup path p, or else the first mount
// of that type.
func pickMount(mounts []mount, fstype, opt, p string) (mount, bool) {
	var first *mount
	for i, m := range mounts {
		if m.fstype != fstype || (opt != "" && !m.hasOpt(opt)) {
			continue
		}
		if _, ok := relativeTo(p, m.root); ok {
			return m, true
		}
		if first == nil {
			first = &mounts[i]
		}
	}
	if first == nil {
		return mount{}, false
	}
	return *first, true
}
