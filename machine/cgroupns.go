package machine

import (
	"os"
	"path"
	"strconv"
	"strings"
)

// maxNamespaceSearch bounds the cgroup directories read while looking for
// the process's cgroup below a mount its cgroup namespace cannot see.
const maxNamespaceSearch = 4096

// escapeDepth returns how many levels above the process's cgroup
// namespace root a mount's root lies, from the root as mountinfo shows it
// inside the namespace: 2 for "/../..". A cgroup filesystem mounted before
// the namespace was made (unshare -C without a remount) shows such a root.
// rest is what follows the ".." segments ("" when the mount is of an
// ancestor of the namespace root); escapes is false for a root inside the
// namespace.
func escapeDepth(root string) (depth int, rest string, escapes bool) {
	segs := strings.Split(strings.Trim(root, "/"), "/")
	for depth < len(segs) && segs[depth] == ".." {
		depth++
	}
	return depth, strings.Join(segs[depth:], "/"), depth > 0
}

// resolveEscaped handles a hierarchy whose mount root lies outside the
// process's cgroup namespace, so that /proc/self/cgroup's path is relative
// to a namespace root the mount does not name. The namespace root is depth
// levels below the mount's directory; it finds which directory it is by
// looking for the process's pid in cgroup.procs, and makes h's path the
// process's cgroup relative to the mount. When it cannot, h is left to read
// the mount's own files, which are not the namespace's, and a note says so.
func (rd *reader) resolveEscaped(h *hierarchy, ctrl string) {
	depth, rest, escapes := escapeDepth(h.root)
	if !escapes {
		return
	}
	what := "cgroup v2"
	if h.version == 1 {
		what = "cgroup v1 " + ctrl
	}
	lead := "the " + what + " mount " + h.mount + " has root " + h.root + ", outside percore's cgroup namespace (a namespace made without mounting cgroupfs again)"
	if rest != "" {
		rd.note("%s; its limits are not read", lead)
		h.root, h.path = "/", "/"
		return
	}
	pid, ok := rd.selfPID()
	if !ok {
		rd.note("%s; percore's own pid is unknown, so its cgroup cannot be found and %s's top-level limits (the host's) are read", lead, h.mount)
		h.root, h.path = "/", "/"
		return
	}
	found := rd.findByPID(h.mount, depth, h.path, pid)
	if len(found) != 1 {
		rd.note("%s; percore's cgroup was not found by its pid below it, so %s's top-level limits (the host's) are read", lead, h.mount)
		h.root, h.path = "/", "/"
		return
	}
	rd.note("%s; found percore's cgroup at %s by its pid", lead, path.Join(h.mount, found[0]))
	h.root, h.path = "/", found[0]
}

// selfPID returns the pid of the process as its /proc/self/stat gives it.
func (rd *reader) selfPID() (int, bool) {
	s, err := rd.read("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	field, _, _ := strings.Cut(s, " ")
	pid, err := strconv.Atoi(field)
	return pid, err == nil && pid > 0
}

// findByPID returns the cgroup paths, relative to the mount, of the form
// /<depth directories>/<leaf> whose cgroup.procs lists pid.
func (rd *reader) findByPID(mount string, depth int, leaf string, pid int) []string {
	want := strconv.Itoa(pid)
	level := []string{"/"}
	visited := 0
	for range depth {
		var next []string
		for _, dir := range level {
			entries, err := os.ReadDir(rd.path(path.Join(mount, dir)))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !e.IsDir() {
					continue
				}
				if visited++; visited > maxNamespaceSearch {
					return nil
				}
				next = append(next, path.Join(dir, e.Name()))
			}
		}
		level = next
	}
	var found []string
	for _, dir := range level {
		p := path.Join(dir, leaf)
		procs, err := rd.read(path.Join(mount, p, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, line := range strings.Fields(procs) {
			if line == want {
				found = append(found, p)
				break
			}
		}
	}
	return found
}
