// Package machine finds out how much CPU and memory the process may really
// use: CPUs (cgroup quota, cpuset, affinity), memory and swap (cgroup
// limits, /proc/meminfo), and the memory cgroup's OOM kill counter. Package
// sizing turns what it finds into the plan.
//
// Detection reads the Linux files a container runtime leaves behind, below a
// filesystem root that tests replace with fixture trees: /proc/self/cgroup,
// /proc/self/mountinfo, /proc/meminfo and the cgroup v1 and v2 interface
// files (cpu.max, cpu.cfs_quota_us, cpuset.cpus.effective, memory.max,
// memory.limit_in_bytes, memory.swap.max, memory.memsw.limit_in_bytes). Limits
// are read along the process's own cgroup and every ancestor visible through
// the mount, and the tightest one wins. Hybrid hosts, with v1 controllers and
// a unified hierarchy that holds none of them, are read through their v1
// controllers. In a cgroup namespace made without mounting the cgroup
// filesystem again (unshare -C), the mount's root lies outside the namespace
// ("/.." in mountinfo) and /proc/self/cgroup's paths are relative to a
// root the mount does not name; the process's cgroup is then found below the
// mount by its pid in cgroup.procs, and a note says so.
//
// # CPU rounding
//
// Workers are whole processes, so a fractional CPU limit is rounded up:
// CPUs = ceil(quota), but never more than the CPUs the process may run on
// (its affinity mask, or its cpuset when that is smaller), and never less
// than 1. A quota of 0.5 gives 1 worker, 1.5 gives 2 and 4 gives 4. Rounding
// up keeps a 1.5-CPU container from idling half a CPU; the scheduler
// throttles the small excess.
//
// The package does not start processes, set limits or watch memory; it only
// measures and computes.
package machine
