package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MemoryCgroup is a memory cgroup made for one test: v1 (as on hybrid
// hosts) or v2, at the top of the hierarchy, limited and without swap.
type MemoryCgroup struct {
	Dir     string // its directory in the cgroup filesystem
	Version int    // 1 or 2
}

// NewMemoryCgroup creates a memory cgroup limited to limit bytes, without
// swap, and removes it when the test ends. It skips the test where that is
// not permitted (not root, or no writable memory controller).
func NewMemoryCgroup(t testing.TB, limit int64) MemoryCgroup {
	t.Helper()
	name := fmt.Sprintf("percore-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, c := range []struct {
		parent  string
		version int
	}{
		{"/sys/fs/cgroup/memory", 1},
		{"/sys/fs/cgroup", 2},
	} {
		cg := MemoryCgroup{Dir: filepath.Join(c.parent, name), Version: c.version}
		if _, err := os.Stat(filepath.Join(c.parent, cg.file("limit"))); err != nil {
			continue
		}
		if err := os.Mkdir(cg.Dir, 0o755); err != nil {
			continue
		}
		if err := cg.write("limit", strconv.FormatInt(limit, 10)); err != nil {
			os.Remove(cg.Dir)
			continue
		}
		swap := strconv.FormatInt(limit, 10) // v1 limits memory and swap together
		if c.version == 2 {
			swap = "0"
		}
		if err := cg.write("swap", swap); err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(cg.Dir)
			t.Fatalf("set the swap limit of %s: %v", cg.Dir, err)
		}
		t.Cleanup(func() { cg.remove(t) })
		return cg
	}
	t.Skip("cannot create a memory cgroup here (needs root and a writable cgroup hierarchy)")
	return MemoryCgroup{}
}

// Child creates a cgroup without a limit of its own below cg, removed when
// the test ends (before cg).
func (cg MemoryCgroup) Child(t testing.TB) MemoryCgroup {
	t.Helper()
	c := MemoryCgroup{Dir: filepath.Join(cg.Dir, "child"), Version: cg.Version}
	if err := os.Mkdir(c.Dir, 0o755); err != nil {
		t.Fatalf("create child cgroup: %v", err)
	}
	t.Cleanup(func() { c.remove(t) })
	return c
}

// Wrapper is a command prefix that moves itself into the cgroup, then
// execs its trailing arguments there.
func (cg MemoryCgroup) Wrapper() []string {
	return []string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, cg.Dir}
}

// OOMKills returns how many processes the kernel's OOM killer ended in the
// cgroup: memory.oom_control's oom_kill (v1), memory.events' (v2).
func (cg MemoryCgroup) OOMKills() (int, error) {
	file := cg.file("events")
	data, err := os.ReadFile(filepath.Join(cg.Dir, file))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("%s has no oom_kill line: %q", file, data)
}

// Usage returns the memory the cgroup uses now, page cache included.
func (cg MemoryCgroup) Usage() (uint64, error) { return cg.number("usage") }

// Peak returns the most memory the cgroup has used.
func (cg MemoryCgroup) Peak() (uint64, error) { return cg.number("peak") }

func (cg MemoryCgroup) number(what string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(cg.Dir, cg.file(what)))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

// file names a control file in the cgroup's version.
func (cg MemoryCgroup) file(what string) string {
	v1 := map[string]string{"limit": "memory.limit_in_bytes", "swap": "memory.memsw.limit_in_bytes",
		"events": "memory.oom_control", "usage": "memory.usage_in_bytes", "peak": "memory.max_usage_in_bytes"}
	v2 := map[string]string{"limit": "memory.max", "swap": "memory.swap.max",
		"events": "memory.events", "usage": "memory.current", "peak": "memory.peak"}
	if cg.Version == 2 {
		return v2[what]
	}
	return v1[what]
}

func (cg MemoryCgroup) write(what, value string) error {
	return os.WriteFile(filepath.Join(cg.Dir, cg.file(what)), []byte(value), 0o644)
}

// remove deletes the cgroup once its processes are gone (up to 5 s).
func (cg MemoryCgroup) remove(t testing.TB) {
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = os.Remove(cg.Dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("remove cgroup %s: %v", cg.Dir, err)
}

// Freeze stops the process pid, every thread of it, in a cgroup v1 freezer
// made for it, until thaw is called (at the latest when the test ends):
// the kernel goes on with the processes around it. It reports false where
// no v1 freezer can be written (not root, or cgroup v2 only).
func Freeze(t testing.TB, pid int) (thaw func(), ok bool) {
	t.Helper()
	const root = "/sys/fs/cgroup/freezer"
	dir := filepath.Join(root, fmt.Sprintf("percore-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return func() {}, false
	}
	write := func(file, v string) error { return os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644) }
	if err := write("cgroup.procs", strconv.Itoa(pid)); err != nil {
		os.Remove(dir)
		return func() {}, false
	}
	if err := write("freezer.state", "FROZEN"); err != nil {
		t.Errorf("freeze %d: %v", pid, err)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if err := write("freezer.state", "THAWED"); err != nil {
				t.Errorf("thaw %d: %v", pid, err)
			}
			// Back to the root, so that the freezer can go.
			if err := os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil &&
				!errors.Is(err, syscall.ESRCH) {
				t.Errorf("move %d out of its freezer: %v", pid, err)
			}
			MemoryCgroup{Dir: dir}.remove(t)
		})
	}
	t.Cleanup(thaw)
	return thaw, true
}

// CPUCgroup is a cgroup v1 cpu controller's cgroup made for one test.
type CPUCgroup struct {
	Dir string // its directory in the cgroup filesystem
}

// NewCPUCgroup creates a v1 cpu cgroup whose CFS quota is cpus CPUs, and
// removes it when the test ends. It skips the test where that is not
// permitted.
func NewCPUCgroup(t testing.TB, cpus float64) CPUCgroup {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup/cpu", fmt.Sprintf("percore-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err != nil {
		t.Skip("no cgroup v1 cpu controller here")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cpu cgroup here: %v", err)
	}
	cg := CPUCgroup{Dir: dir}
	t.Cleanup(func() { MemoryCgroup{Dir: dir, Version: 1}.remove(t) })
	if err := cg.SetQuota(cpus); err != nil {
		t.Fatal(err)
	}
	return cg
}

// SetQuota sets the cgroup's CFS quota to cpus CPUs of a 100 ms period.
func (cg CPUCgroup) SetQuota(cpus float64) error {
	if err := os.WriteFile(filepath.Join(cg.Dir, "cpu.cfs_period_us"), []byte("100000"), 0o644); err != nil {
		return fmt.Errorf("set the CFS period of %s: %w", cg.Dir, err)
	}
	quota := strconv.Itoa(int(cpus * 100000))
	if err := os.WriteFile(filepath.Join(cg.Dir, "cpu.cfs_quota_us"), []byte(quota), 0o644); err != nil {
		return fmt.Errorf("set the CFS quota of %s: %w", cg.Dir, err)
	}
	return nil
}

// SetLimit sets the memory cgroup's limit (and, in v1, its memory+swap
// limit with it) to limit bytes.
func (cg MemoryCgroup) SetLimit(limit int64) error {
	v := strconv.FormatInt(limit, 10)
	if cg.Version == 1 {
		// memsw must stay at or above the limit: lower the limit first,
		// raise memsw first.
		cur, err := cg.number("limit")
		if err == nil && uint64(limit) > cur {
			if err := cg.write("swap", v); err != nil {
				return err
			}
			return cg.write("limit", v)
		}
		if err := cg.write("limit", v); err != nil {
			return err
		}
		return cg.write("swap", v)
	}
	return cg.write("limit", v)
}

// JoinBoth is a command prefix that moves itself into the memory cgroup m
// and the cpu cgroup c, then execs its trailing arguments there.
func JoinBoth(m MemoryCgroup, c CPUCgroup) []string {
	return []string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && echo $$ > "$1/cgroup.procs" && shift && exec "$@"`, m.Dir, c.Dir}
}

// MemoryCgroupOf returns the memory cgroup that pid is in, as this
// process's cgroup namespace sees it: the v1 memory controller's where it is
// mounted (hybrid hosts), else the unified hierarchy's. A container's pid
// gives the container's cgroup, whose limit its runtime set.
func MemoryCgroupOf(pid int) (MemoryCgroup, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return MemoryCgroup{}, err
	}
	unified := ""
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "memory" {
				continue
			}
			cg := MemoryCgroup{Dir: filepath.Join("/sys/fs/cgroup/memory", parts[2]), Version: 1}
			if _, err := os.Stat(filepath.Join(cg.Dir, cg.file("limit"))); err != nil {
				return MemoryCgroup{}, fmt.Errorf("the memory cgroup of pid %d: %w", pid, err)
			}
			return cg, nil
		}
	}
	cg := MemoryCgroup{Dir: filepath.Join("/sys/fs/cgroup", unified), Version: 2}
	if _, err := os.Stat(filepath.Join(cg.Dir, cg.file("limit"))); unified == "" || err != nil {
		return MemoryCgroup{}, fmt.Errorf("pid %d is in no memory cgroup (%q)", pid, data)
	}
	return cg, nil
}
