// Package machine finds out how much CPU and memory the process may really
// use and turns that into a sizing plan: how many JavaScript workers to start
// and how large a V8 heap each of them may have.
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
// # Memory sizing
//
// NewPlan divides the memory left after a reserve for percore itself, the
// kernel and page cache (ReserveMB plus ReservePercent of memory, at most
// ReserveMaxMB) between worker slots. There is one slot per worker plus one
// spare slot, so that a replacement worker can start before the one it
// replaces stops, provided the spare still leaves every worker a heap of at
// least MinHeapMB; otherwise the slots are the workers alone and
// Plan.SpareSlot is false. Each slot's share is the worker's RSS budget.
// From a budget B in MiB the V8 old-space limit is
//
//	heap = (B - NodeBaseMB - young) * HeapPercent / 100
//
// where NodeBaseMB is the RSS of an idle Node process and young is V8's
// young generation (three semi-spaces: 3 MiB below a 256 MiB heap, growing
// to 48 MiB at 2 GiB). The semi-space size is part of the plan
// (Plan.SemiSpaceMB) and is passed to the runtime, so the young generation
// does not depend on the memory V8 believes the machine has. The remaining fifth covers code space, Buffers,
// native allocations and the garbage collector's own working memory; with it,
// workers that fill their heap die with "JavaScript heap out of memory"
// before the cgroup's OOM killer is reached. The automatic worker count is
// lowered until every worker gets at least MinHeapMB, and a computed heap is
// never below HeapFloorMB.
//
// The heap is computed for a runtime whose Request.Memory is HeapCap. For a
// runtime without a hard heap cap (RecycleByRSS, as Bun's JavaScriptCore)
// the budget is the RSS at which a worker should be recycled and no heap
// flag is computed; the same holds for a runtime that takes no heap setting
// (NoHeapLimit). The package knows runtimes only by these policies.
//
// The package does not start processes, set limits or watch memory; it only
// measures and computes.
package machine
