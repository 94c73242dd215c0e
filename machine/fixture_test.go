package machine

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// tree is a fixture filesystem: root-relative path to file contents.
type tree map[string]string

// build writes the tree below a fresh temporary directory and returns it.
func (tr tree) build(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range tr {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// with returns a copy of the tree with more files; "" as contents deletes.
func (tr tree) with(more tree) tree {
	out := tree{}
	for k, v := range tr {
		out[k] = v
	}
	for k, v := range more {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// meminfoText renders a /proc/meminfo with the given totals in MiB.
func meminfoText(totalMiB, swapMiB uint64) string {
	return fmt.Sprintf("MemTotal:       %d kB\nMemFree:        1000 kB\nMemAvailable:   2000 kB\nSwapTotal:      %d kB\nSwapFree:       %d kB\n",
		totalMiB*1024, swapMiB*1024, swapMiB*1024)
}

// mib renders n MiB as a decimal byte count.
func mib(n uint64) string { return fmt.Sprint(n * MiB) }

const v2Mountinfo = `21 26 0:20 / /proc rw,relatime - proc proc rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 26 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// v2Tree is a cgroup v2 host whose process is in cgroup cg, with every
// controller enabled, 8 GiB of RAM and swapMiB of swap. Files are given
// relative to /sys/fs/cgroup.
func v2Tree(cg string, swapMiB uint64, files tree) tree {
	tr := tree{
		"proc/self/cgroup":                     "0::" + cg + "\n",
		"proc/self/mountinfo":                  v2Mountinfo,
		"proc/meminfo":                         meminfoText(8192, swapMiB),
		"sys/fs/cgroup/cgroup.controllers":     "cpuset cpu io memory hugetlb pids rdma misc\n",
		"sys/fs/cgroup/cgroup.subtree_control": "cpuset cpu io memory pids\n",
	}
	tr[path.Join("sys/fs/cgroup", cg, "cgroup.procs")] = "1\n"
	for p, body := range files {
		tr["sys/fs/cgroup/"+strings.TrimPrefix(p, "/")] = body
	}
	return tr
}

const v1Mountinfo = `21 26 0:20 / /proc rw,relatime - proc proc rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 26 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,xattr,name=systemd
`

// v1Tree is a cgroup v1 host whose process is in cgroup cg of every
// hierarchy, with 8 GiB of RAM and swapMiB of swap. Files are given relative
// to /sys/fs/cgroup; "cpu/" is the cpu,cpuacct hierarchy.
func v1Tree(cg string, swapMiB uint64, files tree) tree {
	tr := tree{
		"proc/self/cgroup":    fmt.Sprintf("12:memory:%[1]s\n5:cpuset:%[1]s\n3:cpu,cpuacct:%[1]s\n1:name=systemd:%[1]s\n", cg),
		"proc/self/mountinfo": v1Mountinfo,
		"proc/meminfo":        meminfoText(8192, swapMiB),
	}
	for _, h := range []string{"cpu,cpuacct", "cpuset", "memory", "systemd"} {
		tr[path.Join("sys/fs/cgroup", h, cg, "cgroup.procs")] = "1\n"
	}
	for p, body := range files {
		p = strings.TrimPrefix(p, "/")
		if rest, ok := strings.CutPrefix(p, "cpu/"); ok {
			p = "cpu,cpuacct/" + rest
		}
		tr["sys/fs/cgroup/"+p] = body
	}
	return tr
}

// hybridTree is the layout of a Firecracker VM this package was measured
// on: v1 controllers, a unified mount with no controllers, the process in a
// nested v1 memory cgroup without limits.
func hybridTree() tree {
	const leaf = "/process_api/c829338a89ceee71c283af9496ac2fa5"
	const unlimited = "9223372036854771712\n"
	return tree{
		"proc/self/cgroup": "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:" + leaf +
			"\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n",
		"proc/self/mountinfo": `21 26 0:20 / /proc rw,relatime - proc proc rw
22 26 0:21 / /sys rw,relatime - sysfs sysfs rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
		"proc/meminfo": "MemTotal:       24683620 kB\nMemFree:        20000000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
		"sys/fs/cgroup/unified/cgroup.controllers":                     "\n",
		"sys/fs/cgroup/cpu/cpu.cfs_quota_us":                           "-1\n",
		"sys/fs/cgroup/cpu/cpu.cfs_period_us":                          "100000\n",
		"sys/fs/cgroup/cpuset/cpuset.cpus":                             "0-1\n",
		"sys/fs/cgroup/cpuset/cpuset.effective_cpus":                   "0-1\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":                   unlimited,
		"sys/fs/cgroup/memory/memory.memsw.limit_in_bytes":             unlimited,
		"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":       unlimited,
		"sys/fs/cgroup/memory/process_api/memory.memsw.limit_in_bytes": unlimited,
		"sys/fs/cgroup/memory" + leaf + "/memory.limit_in_bytes":       unlimited,
		"sys/fs/cgroup/memory" + leaf + "/memory.memsw.limit_in_bytes": unlimited,
	}
}

// fixedAffinity returns an affinity function reporting n CPUs.
func fixedAffinity(n int) func() (int, error) {
	return func() (int, error) { return n, nil }
}

// noPhysMem is a PhysMem that never knows.
func noPhysMem() (uint64, error) { return 0, fmt.Errorf("no physical memory source") }
