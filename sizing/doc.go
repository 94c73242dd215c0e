// Package sizing turns the resources the process may use (package
// machine), the runtime's memory policy (package jsruntime) and the user's
// settings into the plan percore runs by: how many workers, the heap flags
// each gets, each worker's memory budget and the memory guard's limits. It
// plans again whenever an input changes (a scale, a cgroup limit changed
// under a running percore; see Live), and says what changed.
//
// It does not detect resources, start processes or put flags on command
// lines; it only computes, and Live tells its owner what to apply.
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
package sizing
