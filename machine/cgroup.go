package machine

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Controller names this package reads.
const (
	ctrlCPU    = "cpu"
	ctrlCpuset = "cpuset"
	ctrlMemory = "memory"
)

// cgroupEntry is one line of /proc/<pid>/cgroup: "id:controllers:path".
type cgroupEntry struct {
	id          int
	controllers []string // empty for the cgroup v2 line "0::/path"
	path        string
}

// unified reports whether the entry is the cgroup v2 line.
func (e cgroupEntry) unified() bool {
	return e.id == 0 && len(e.controllers) == 0
}

// has reports whether the entry binds controller c.
func (e cgroupEntry) has(c string) bool {
	for _, x := range e.controllers {
		if x == c {
			return true
		}
	}
	return false
}

// realV1 reports whether the entry binds a real v1 controller rather than
// only a named hierarchy such as name=systemd.
func (e cgroupEntry) realV1() bool {
	for _, c := range e.controllers {
		if !strings.HasPrefix(c, "name=") {
			return true
		}
	}
	return false
}

// parseCgroupFile parses /proc/<pid>/cgroup. Malformed lines are skipped and
// reported in the returned error; the entries that parsed are still returned.
func parseCgroupFile(s string) ([]cgroupEntry, error) {
	var entries []cgroupEntry
	var errs []error
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		e, err := parseCgroupLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

// parseCgroupLine parses one "id:controllers:path" line.
func parseCgroupLine(line string) (cgroupEntry, error) {
	parts := strings.SplitN(line, ":", 3)
	if len(parts) != 3 {
		return cgroupEntry{}, fmt.Errorf("want id:controllers:path, got %q", line)
	}
	id, err := strconv.Atoi(parts[0])
	if err != nil || id < 0 {
		return cgroupEntry{}, fmt.Errorf("bad hierarchy id %q", parts[0])
	}
	if !strings.HasPrefix(parts[2], "/") {
		return cgroupEntry{}, fmt.Errorf("cgroup path %q is not absolute", parts[2])
	}
	e := cgroupEntry{id: id, path: parts[2]}
	if parts[1] != "" {
		e.controllers = strings.Split(parts[1], ",")
	}
	return e, nil
}

// hierarchy is one mounted cgroup hierarchy as seen by the process.
type hierarchy struct {
	version int    // 1 or 2
	mount   string // mount point, root-relative
	root    string // the hierarchy path mounted there (mountinfo field 4)
	path    string // the process's cgroup path in the hierarchy
}

// level is one cgroup directory on the way from the process's cgroup up to
// the mount point.
type level struct {
	cgroup string // cgroup path, as /proc/self/cgroup would show it
	dir    string // root-relative directory
}

// levels lists the process's cgroup and its visible ancestors, leaf first.
func (rd *reader) levels(h hierarchy) []level {
	rel, ok := relativeTo(h.path, h.root)
	if !ok {
		rd.note("cgroup %s is outside the mount root %s of %s; reading %s only",
			h.path, h.root, h.mount, h.mount)
		rel = "/"
	}
	if !rd.isDir(path.Join(h.mount, rel)) {
		if rel != "/" {
			rd.note("cgroup directory %s is missing; reading %s only", path.Join(h.mount, rel), h.mount)
		}
		rel = "/"
	}
	var out []level
	for {
		out = append(out, level{cgroup: path.Join(h.root, rel), dir: path.Join(h.mount, rel)})
		if rel == "/" {
			return out
		}
		rel = path.Dir(rel)
	}
}

// relativeTo returns p relative to root as a clean absolute path ("/" for
// root itself), or false when p is not below root.
func relativeTo(p, root string) (string, bool) {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", false
		}
	}
	p, root = path.Clean(p), path.Clean(root)
	if root == "/" {
		return p, true
	}
	if p == root {
		return "/", true
	}
	if strings.HasPrefix(p, root+"/") {
		return p[len(root):], true
	}
	return "", false
}

// source names a limit file for Resources, adding the cgroup path when the
// limit came from an ancestor rather than the process's own cgroup.
func source(version int, file string, levels []level, i int) string {
	s := fmt.Sprintf("cgroup v%d %s", version, file)
	if i > 0 {
		s += " (" + levels[i].cgroup + ")"
	}
	return s
}
