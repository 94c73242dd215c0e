package machine

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

const memTotal8G = 8192 * MiB

func TestDetect(t *testing.T) {
	cases := []struct {
		name     string
		tree     tree
		affinity func() (int, error)
		physMem  func() (uint64, error)
		want     Resources // Notes are checked through notes
		notes    []string  // substrings that must appear in Resources.Notes
	}{
		{
			name: "v2 host without limits",
			tree: v2Tree("/", 0, nil),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "no cgroups at all",
			tree: tree{"proc/meminfo": meminfoText(8192, 1024)},
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", Swap: 1024 * MiB, SwapSource: "/proc/meminfo", Cgroup: "none"},
			notes: []string{"read /proc/self/cgroup"},
		},
		{
			name: "v2 quota 0.5",
			tree: v2Tree("/app", 0, tree{"app/cpu.max": "50000 100000\n"}),
			want: Resources{CPUs: 1, CPUQuota: 0.5, CPUSource: "cgroup v2 cpu.max", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 quota 1.5",
			tree: v2Tree("/app", 0, tree{"app/cpu.max": "150000 100000\n"}),
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v2 cpu.max", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 quota 4 with default period",
			tree: v2Tree("/app", 0, tree{"app/cpu.max": "400000\n"}),
			want: Resources{CPUs: 4, CPUQuota: 4, CPUSource: "cgroup v2 cpu.max", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name:     "v2 quota 4 above affinity 2",
			tree:     v2Tree("/app", 0, tree{"app/cpu.max": "400000 100000\n"}),
			affinity: fixedAffinity(2),
			want: Resources{CPUs: 2, CPUQuota: 2, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 max quota is unlimited",
			tree: v2Tree("/app", 0, tree{"app/cpu.max": "max 100000\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 quota 0.5",
			tree: v1Tree("/app", 0, tree{"cpu/app/cpu.cfs_quota_us": "50000\n", "cpu/app/cpu.cfs_period_us": "100000\n"}),
			want: Resources{CPUs: 1, CPUQuota: 0.5, CPUSource: "cgroup v1 cpu.cfs_quota_us", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v1 quota 1.5",
			tree: v1Tree("/app", 0, tree{"cpu/app/cpu.cfs_quota_us": "75000\n", "cpu/app/cpu.cfs_period_us": "50000\n"}),
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v1 cpu.cfs_quota_us", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v1 quota 4",
			tree: v1Tree("/app", 0, tree{"cpu/app/cpu.cfs_quota_us": "400000\n", "cpu/app/cpu.cfs_period_us": "100000\n"}),
			want: Resources{CPUs: 4, CPUQuota: 4, CPUSource: "cgroup v1 cpu.cfs_quota_us", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v1 quota -1 is unlimited",
			tree: v1Tree("/app", 0, tree{"cpu/app/cpu.cfs_quota_us": "-1\n", "cpu/app/cpu.cfs_period_us": "100000\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v2 cpuset list smaller than affinity",
			tree: v2Tree("/app", 0, tree{"app/cpuset.cpus.effective": "0-3,6\n"}),
			want: Resources{CPUs: 5, CPUQuota: 5, CPUSource: "cpuset", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 cpuset with quota 1.5",
			tree: v2Tree("/app", 0, tree{"app/cpuset.cpus.effective": "2-3\n", "app/cpu.max": "150000 100000\n"}),
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v2 cpu.max", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 cpuset of 1 caps quota 4",
			tree: v2Tree("/app", 0, tree{"app/cpuset.cpus.effective": "5\n", "app/cpu.max": "400000 100000\n"}),
			want: Resources{CPUs: 1, CPUQuota: 1, CPUSource: "cpuset", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 cpuset.effective_cpus preferred over cpuset.cpus",
			tree: v1Tree("/app", 0, tree{"cpuset/app/cpuset.effective_cpus": "0-1\n", "cpuset/app/cpuset.cpus": "0-5\n"}),
			want: Resources{CPUs: 2, CPUQuota: 2, CPUSource: "cpuset", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v1 cpuset.cpus alone",
			tree: v1Tree("/app", 0, tree{"cpuset/app/cpuset.cpus": "0,2,4\n"}),
			want: Resources{CPUs: 3, CPUQuota: 3, CPUSource: "cpuset", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v2 nested, parent tighter",
			tree: v2Tree("/kubepods/pod1/ctr", 0, tree{
				"kubepods/cpu.max":               "100000 100000\n",
				"kubepods/memory.max":            mib(256),
				"kubepods/pod1/cpu.max":          "200000 100000\n",
				"kubepods/pod1/memory.max":       mib(512),
				"kubepods/pod1/ctr/cpu.max":      "max 100000\n",
				"kubepods/pod1/ctr/memory.max":   "max\n",
				"kubepods/pod1/ctr/cgroup.procs": "1\n",
			}),
			want: Resources{CPUs: 1, CPUQuota: 1, CPUSource: "cgroup v2 cpu.max (/kubepods)", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max (/kubepods)", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 nested, leaf tighter",
			tree: v2Tree("/kubepods/ctr", 0, tree{
				"kubepods/cpu.max":        "400000 100000\n",
				"kubepods/memory.max":     mib(2048),
				"kubepods/ctr/cpu.max":    "150000 100000\n",
				"kubepods/ctr/memory.max": mib(512),
			}),
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v2 cpu.max", Memory: 512 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 nested, parent tighter",
			tree: v1Tree("/docker/abc", 0, tree{
				"cpu/docker/cpu.cfs_quota_us":             "50000\n",
				"cpu/docker/cpu.cfs_period_us":            "100000\n",
				"cpu/docker/abc/cpu.cfs_quota_us":         "-1\n",
				"cpu/docker/abc/cpu.cfs_period_us":        "100000\n",
				"memory/docker/memory.limit_in_bytes":     mib(256),
				"memory/docker/abc/memory.limit_in_bytes": "9223372036854771712\n",
			}),
			want: Resources{CPUs: 1, CPUQuota: 0.5, CPUSource: "cgroup v1 cpu.cfs_quota_us (/docker)", Memory: 256 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes (/docker)", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v2 memory 256MiB",
			tree: v2Tree("/app", 0, tree{"app/memory.max": mib(256)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 memory 512MiB",
			tree: v1Tree("/app", 0, tree{"memory/app/memory.limit_in_bytes": mib(512)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v2 memory 2GiB",
			tree: v2Tree("/app", 0, tree{"app/memory.max": mib(2048)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 2 * GiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 memory max is unlimited",
			tree: v2Tree("/app", 0, tree{"app/memory.max": "max\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 unlimited sentinel",
			tree: v1Tree("/app", 0, tree{"memory/app/memory.limit_in_bytes": "9223372036854771712\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "limit above MemTotal",
			tree: v1Tree("/app", 0, tree{"memory/app/memory.limit_in_bytes": mib(16384)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"above MemTotal"},
		},
		{
			name: "v2 swap limited by memory.swap.max",
			tree: v2Tree("/app", 2048, tree{"app/memory.max": mib(1024), "app/memory.swap.max": mib(512)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: GiB, MemorySource: "cgroup v2 memory.max",
				Swap: 512 * MiB, SwapSource: "cgroup v2 memory.swap.max", Cgroup: "v2"},
		},
		{
			name: "v2 swap max is SwapTotal",
			tree: v2Tree("/app", 2048, tree{"app/memory.max": mib(1024), "app/memory.swap.max": "max\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: GiB, MemorySource: "cgroup v2 memory.max",
				Swap: 2048 * MiB, SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 swap off by memory.swap.max 0",
			tree: v2Tree("/app", 2048, tree{"app/memory.max": mib(1024), "app/memory.swap.max": "0\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: GiB, MemorySource: "cgroup v2 memory.max",
				SwapSource: "cgroup v2 memory.swap.max", Cgroup: "v2"},
		},
		{
			name: "v2 swap limit from ancestor",
			tree: v2Tree("/a/b", 2048, tree{"a/memory.swap.max": mib(256), "a/b/memory.swap.max": mib(1024)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G, MemorySource: "/proc/meminfo",
				Swap: 256 * MiB, SwapSource: "cgroup v2 memory.swap.max (/a)", Cgroup: "v2"},
		},
		{
			name: "no swap device",
			tree: v2Tree("/app", 0, tree{"app/memory.swap.max": "max\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 memsw gives 256MiB swap",
			tree: v1Tree("/app", 2048, tree{"memory/app/memory.limit_in_bytes": mib(512), "memory/app/memory.memsw.limit_in_bytes": mib(768)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB, MemorySource: "cgroup v1 memory.limit_in_bytes",
				Swap: 256 * MiB, SwapSource: "cgroup v1 memory.memsw.limit_in_bytes", Cgroup: "v1"},
		},
		{
			name: "v1 memsw equal to memory means no swap",
			tree: v1Tree("/app", 2048, tree{"memory/app/memory.limit_in_bytes": mib(512), "memory/app/memory.memsw.limit_in_bytes": mib(512)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB, MemorySource: "cgroup v1 memory.limit_in_bytes",
				SwapSource: "cgroup v1 memory.memsw.limit_in_bytes", Cgroup: "v1"},
		},
		{
			name: "v1 memsw unlimited gives SwapTotal",
			tree: v1Tree("/app", 2048, tree{"memory/app/memory.limit_in_bytes": mib(512), "memory/app/memory.memsw.limit_in_bytes": "9223372036854771712\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB, MemorySource: "cgroup v1 memory.limit_in_bytes",
				Swap: 2048 * MiB, SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name:     "hybrid layout of the measuring VM",
			tree:     hybridTree(),
			affinity: fixedAffinity(2),
			want: Resources{CPUs: 2, CPUQuota: 2, CPUSource: "affinity", Memory: 24683620 * KiB,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "hybrid"},
		},
		{
			name: "hybrid with limits in v1 and a stray v2 memory.max",
			tree: hybridTree().with(tree{
				"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes": mib(512),
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us":                     "150000\n",
				"sys/fs/cgroup/unified/memory.max":                       mib(64),
			}),
			affinity: fixedAffinity(2),
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v1 cpu.cfs_quota_us", Memory: 512 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes (/process_api)", SwapSource: "/proc/meminfo", Cgroup: "hybrid"},
		},
		{
			name: "hybrid with memory moved to the unified hierarchy",
			tree: tree{
				"proc/self/cgroup": "3:cpu,cpuacct:/\n0::/svc\n",
				"proc/self/mountinfo": `31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
`,
				"proc/meminfo": meminfoText(8192, 0),
				"sys/fs/cgroup/unified/cgroup.controllers": "memory pids\n",
				"sys/fs/cgroup/unified/svc/memory.max":     mib(1024),
			},
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: GiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "hybrid"},
		},
		{
			name: "v2 with no controllers enabled",
			tree: v2Tree("/app", 0, tree{"cgroup.controllers": "\n", "app/memory.max": mib(256)}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v1 container without cgroup namespace",
			tree: tree{
				"proc/self/cgroup": "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n",
				"proc/self/mountinfo": `34 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
`,
				"proc/meminfo": meminfoText(8192, 0),
				"sys/fs/cgroup/memory/memory.limit_in_bytes":  mib(512),
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "150000\n",
				"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
			},
			want: Resources{CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v1 cpu.cfs_quota_us", Memory: 512 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes", SwapSource: "/proc/meminfo", Cgroup: "v1"},
		},
		{
			name: "v2 mount root below the process's parent",
			tree: tree{
				"proc/self/cgroup":                 "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo":              "30 26 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
				"proc/meminfo":                     meminfoText(8192, 0),
				"sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
				"sys/fs/cgroup/memory.max":         mib(256),
				"sys/fs/cgroup/cpu.max":            "50000 100000\n",
				"sys/fs/cgroup/ctr/memory.max":     mib(1024),
			},
			want: Resources{CPUs: 1, CPUQuota: 0.5, CPUSource: "cgroup v2 cpu.max (/kubepods/pod1)", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max (/kubepods/pod1)", SwapSource: "/proc/meminfo", Cgroup: "v2"},
		},
		{
			name: "v2 cgroup namespace with the process outside its root",
			tree: v2Tree("/", 0, tree{"memory.max": mib(512)}).with(tree{"proc/self/cgroup": "0::/../../system.slice/x\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"outside the mount root"},
		},
		{
			name: "v1 cgroup namespace without a remount finds the process's cgroup by its pid",
			tree: unsharedV1Tree("42 (percore) S 1 42 42 0 -1\n"),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes (/a)", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"the cgroup v1 memory mount /sys/fs/cgroup/memory has root /../.., outside percore's cgroup namespace" +
				" (a namespace made without mounting cgroupfs again); found percore's cgroup at /sys/fs/cgroup/memory/a/b by its pid"},
		},
		{
			name: "v1 cgroup namespace without a remount, the process's cgroup not found",
			tree: unsharedV1Tree("99 (percore) S 1 99 99 0 -1\n"),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"has root /../.., outside percore's cgroup namespace", "percore's cgroup was not found by its pid below it, " +
				"so /sys/fs/cgroup/memory's top-level limits (the host's) are read"},
		},
		{
			name: "v2 cgroup namespace without a remount finds the process's cgroup by its pid",
			tree: v2Tree("/", 0, tree{"memory.max": "max\n", "k/pod/memory.max": mib(256), "k/pod/cgroup.procs": "5\n42\n",
				"k/other/cgroup.procs": "7\n", "j/memory.max": mib(128)}).with(tree{
				"proc/self/mountinfo": strings.Replace(v2Mountinfo, "0:27 / /sys/fs/cgroup", "0:27 /../.. /sys/fs/cgroup", 1),
				"proc/self/stat":      "42 (percore) S 1\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"found percore's cgroup at /sys/fs/cgroup/k/pod by its pid"},
		},
		{
			name: "mountinfo missing falls back to /sys/fs/cgroup",
			tree: v2Tree("/app", 0, tree{"app/memory.max": mib(512)}).with(tree{"proc/self/mountinfo": ""}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"read /proc/self/mountinfo", "using /sys/fs/cgroup"},
		},
		{
			name: "v1 mountinfo without cgroup mounts falls back to the controller directory",
			tree: v1Tree("/app", 0, tree{"memory/app/memory.limit_in_bytes": mib(512)}).with(tree{
				"proc/self/mountinfo": "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v1 memory.limit_in_bytes", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"using /sys/fs/cgroup/memory"},
		},
		{
			name: "cgroup directory missing reads the mount point",
			tree: v2Tree("/gone", 0, tree{"memory.max": mib(512)}).with(tree{"sys/fs/cgroup/gone/cgroup.procs": ""}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 512 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"/sys/fs/cgroup/gone is missing"},
		},
		{
			name: "malformed cpu.max is skipped",
			tree: v2Tree("/app", 0, tree{"app/cpu.max": "half 100000\n", "cpu.max": "200000 100000\n"}),
			want: Resources{CPUs: 2, CPUQuota: 2, CPUSource: "cgroup v2 cpu.max (/)", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"/sys/fs/cgroup/app/cpu.max: quota: not an integer"},
		},
		{
			name: "malformed v1 period is skipped",
			tree: v1Tree("/app", 0, tree{"cpu/app/cpu.cfs_quota_us": "50000\n", "cpu/app/cpu.cfs_period_us": "0\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"cpu.cfs_quota_us: period: not positive"},
		},
		{
			name: "malformed cpuset is skipped",
			tree: v2Tree("/app", 0, tree{"app/cpuset.cpus.effective": "3-1\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"cpuset.cpus.effective: CPU range \"3-1\" runs backwards"},
		},
		{
			name: "malformed memory.max is skipped",
			tree: v2Tree("/app", 0, tree{"app/memory.max": "lots\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"/sys/fs/cgroup/app/memory.max: not a byte count"},
		},
		{
			name: "zero memory limit is skipped",
			tree: v1Tree("/app", 0, tree{"memory/app/memory.limit_in_bytes": "0\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v1"},
			notes: []string{"limit of 0 bytes"},
		},
		{
			name: "malformed lines in /proc/self/cgroup are skipped",
			tree: v2Tree("/app", 0, tree{"app/memory.max": mib(256)}).with(tree{"proc/self/cgroup": "garbage\n0::/app\n"}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"/proc/self/cgroup: skipped malformed lines: line 1"},
		},
		{
			name: "meminfo missing, cgroup limit used",
			tree: v2Tree("/app", 0, tree{"app/memory.max": mib(256)}).with(tree{"proc/meminfo": ""}),
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 256 * MiB,
				MemorySource: "cgroup v2 memory.max", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"read /proc/meminfo"},
		},
		{
			name:    "meminfo missing, physical memory used",
			tree:    v2Tree("/app", 0, nil).with(tree{"proc/meminfo": ""}),
			physMem: func() (uint64, error) { return 4 * GiB, nil },
			want: Resources{CPUs: 8, CPUQuota: 8, CPUSource: "affinity", Memory: 4 * GiB,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"using physical memory 4.0GiB"},
		},
		{
			name:     "affinity failure falls back to cpuset",
			tree:     v2Tree("/app", 0, tree{"app/cpuset.cpus.effective": "0-2\n"}),
			affinity: func() (int, error) { return 0, errors.New("sched_getaffinity: EPERM") },
			want: Resources{CPUs: 3, CPUQuota: 3, CPUSource: "cpuset", Memory: memTotal8G,
				MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"CPU affinity: sched_getaffinity: EPERM"},
		},
		{
			name:     "affinity failure without cpuset falls back to runtime.NumCPU",
			tree:     v2Tree("/app", 0, nil),
			affinity: func() (int, error) { return 0, errors.New("EPERM") },
			want: Resources{CPUs: runtime.NumCPU(), CPUQuota: float64(runtime.NumCPU()), CPUSource: "runtime.NumCPU",
				Memory: memTotal8G, MemorySource: "/proc/meminfo", SwapSource: "/proc/meminfo", Cgroup: "v2"},
			notes: []string{"using runtime.NumCPU()"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Detector{Root: c.tree.build(t), Affinity: c.affinity, PhysMem: c.physMem}
			if d.Affinity == nil {
				d.Affinity = fixedAffinity(8)
			}
			if d.PhysMem == nil {
				d.PhysMem = noPhysMem
			}
			got, err := d.Detect()
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			notes := got.Notes
			got.Notes = nil
			if got.CPUs != c.want.CPUs || got.CPUQuota != c.want.CPUQuota || got.CPUSource != c.want.CPUSource ||
				got.Memory != c.want.Memory || got.MemorySource != c.want.MemorySource ||
				got.Swap != c.want.Swap || got.SwapSource != c.want.SwapSource || got.Cgroup != c.want.Cgroup {
				t.Errorf("Detect:\n got %+v\nwant %+v\nnotes %q", got, c.want, notes)
			}
			for _, n := range c.notes {
				if !containsSubstring(notes, n) {
					t.Errorf("notes %q lack %q", notes, n)
				}
			}
			if len(c.notes) == 0 && len(notes) > 0 {
				t.Errorf("unexpected notes %q", notes)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	cases := []struct {
		name string
		tree tree
		want string
	}{
		{"meminfo missing", v2Tree("/app", 0, nil).with(tree{"proc/meminfo": ""}), "read /proc/meminfo"},
		{"meminfo without MemTotal", v2Tree("/app", 0, nil).with(tree{"proc/meminfo": "SwapTotal: 0 kB\n"}), "parse /proc/meminfo: no MemTotal"},
		{"meminfo garbage", v1Tree("/app", 0, nil).with(tree{"proc/meminfo": "MemTotal: many kB\n"}), "parse /proc/meminfo: MemTotal: not a number"},
		{"empty root", tree{}, "read /proc/meminfo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Detector{Root: c.tree.build(t), Affinity: fixedAffinity(2), PhysMem: noPhysMem}
			_, err := d.Detect()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Detect error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestDetectThisMachine runs the real detection on the machine running the
// tests and checks the result is sane.
func TestDetectThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cgroup detection needs Linux")
	}
	r, err := Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Logf("%+v", r)
	if r.CPUs < 1 || r.CPUs > runtime.NumCPU() {
		t.Errorf("CPUs = %d, want 1..%d", r.CPUs, runtime.NumCPU())
	}
	if r.CPUQuota <= 0 || r.CPUQuota > float64(r.CPUs) {
		t.Errorf("CPUQuota = %v, want in (0, %d]", r.CPUQuota, r.CPUs)
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	mi, err := parseMeminfo(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory == 0 || r.Memory > mi.memTotal {
		t.Errorf("Memory = %d, want in (0, %d]", r.Memory, mi.memTotal)
	}
	if r.Swap > mi.swapTotal {
		t.Errorf("Swap = %d, above SwapTotal %d", r.Swap, mi.swapTotal)
	}
	if r.Cgroup == "" || r.CPUSource == "" || r.MemorySource == "" {
		t.Errorf("missing sources in %+v", r)
	}
}

// containsSubstring reports whether any of list contains s.
func containsSubstring(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// unsharedV1Tree is a cgroup v1 host seen from a cgroup namespace made
// with unshare -C and no new cgroup mount: the process's cgroup /a/b looks
// like "/" and the memory mount's root like "/../..". stat is the
// process's /proc/self/stat; pid 42 is in /a/b, limited to 512 MiB at /a.
func unsharedV1Tree(stat string) tree {
	return v1Tree("/", 0, tree{
		"memory/a/memory.limit_in_bytes": mib(512),
		"memory/a/b/cgroup.procs":        "40\n42\n",
		"memory/x/memory.limit_in_bytes": mib(256),
		"memory/x/y/cgroup.procs":        "7\n",
		"memory/z/cgroup.procs":          "8\n",
	}).with(tree{
		"proc/self/mountinfo": strings.Replace(v1Mountinfo, "0:31 / /sys/fs/cgroup/memory", "0:31 /../.. /sys/fs/cgroup/memory", 1),
		"proc/self/stat":      stat,
	})
}
