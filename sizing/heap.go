package sizing

import "github.com/percore/percore/machine"

// Sizing constants, in MiB or percent. The figures behind them were measured
// with node v20 in cgroup v1 memory cgroups of 256 MiB to 2 GiB, every worker
// slot (spare included) filled by a process that retains objects and Buffers
// until its heap is full, page cache dropped first so the node binary is
// charged too. At HeapPercent 80 every process died with "JavaScript heap
// out of memory" while the cgroup peaked at 67-88% of its limit with Buffers
// about a twelfth of the heap, and at most 96% with Buffers a quarter of it;
// at 90 the peaks were 88-96%; at 100 the 256 MiB cgroup hit its limit.
// Measured again with the semi-space size passed and the limit on a parent
// cgroup (node v20.20, deno 2.9.6; TestHeapOOMBeforeCgroupOOM): every node
// and deno process died of heap exhaustion, no OOM kill, the highest process
// peak RSS 88-90% of its budget (204 of 227 MiB, 189 of 211, 277 of 313) and
// heap_size_limit exactly old space + young generation. An idle node or
// deno HTTP server has an RSS of 42 MiB, file pages included.
const (
	// MinHeapMB is the smallest heap worth running a worker with; the
	// automatic worker count is lowered until each worker gets this much.
	MinHeapMB = 128
	// HeapFloorMB is the smallest heap NewPlan ever computes.
	HeapFloorMB = 64
	// ReserveMB is kept back for percore itself and the kernel.
	ReserveMB = 32
	// ReservePercent of memory is also kept back, for page cache, socket
	// buffers and tmpfs charged to the same cgroup.
	ReservePercent = 5
	// ReserveMaxMB caps the whole reserve on large machines.
	ReserveMaxMB = 256
	// NodeBaseMB is the RSS of an idle Node process: code, V8 and libuv
	// before any application object.
	NodeBaseMB = 40
	// HeapPercent is the share of a worker's budget, after NodeBaseMB and
	// the young generation, given to old space; the rest covers code space,
	// Buffers, native memory and garbage collection.
	HeapPercent = 80
)

// usableMemory returns the bytes left for workers out of total once the
// reserve is kept back.
func usableMemory(total uint64) uint64 {
	reserve := min(ReserveMB*machine.MiB+total/100*ReservePercent, ReserveMaxMB*machine.MiB)
	if total <= reserve {
		return 0
	}
	return total - reserve
}

// semiSpaceMB is the V8 semi-space size, in MiB, that a worker of old space
// heapMB is given with --max-semi-space-size: heap/256 up to a 256 MiB heap,
// heap/128 above, between 1 and 16 MiB, rounded down to a power of two (V8
// rounds a semi-space up to one). These are V8's own ratios; passing the
// size pins it, because V8 otherwise sizes the young generation from the
// memory it believes the machine has, which for a limit on a parent cgroup
// is the host's (a 48 MiB young generation beside a 147 MiB old space).
func semiSpaceMB(heapMB uint64) uint64 {
	ratio := uint64(128)
	if heapMB <= 256 {
		ratio = 256
	}
	semi := min(max(heapMB/ratio, 1), 16)
	for semi&(semi-1) != 0 {
		semi &= semi - 1
	}
	return semi
}

// youngGenMB is V8's young generation for a semi-space of semiSpaceMB(heapMB):
// two semi-spaces and a new large-object space of the same size. V8 reports
// heap_size_limit as the old space plus this.
func youngGenMB(heapMB uint64) uint64 {
	return 3 * semiSpaceMB(heapMB)
}

// heapForBudget returns the old-space limit in MiB that keeps a Node worker
// within an RSS budget of budgetMB, or 0 when the budget is below NodeBaseMB.
// The young generation is sized from the budget (semiSpaceForBudget), a
// slight overestimate.
func heapForBudget(budgetMB uint64) uint64 {
	if budgetMB <= NodeBaseMB {
		return 0
	}
	x := budgetMB - NodeBaseMB
	y := youngGenMB(x)
	if x <= y {
		return 0
	}
	return (x - y) * HeapPercent / 100
}

// semiSpaceForBudget returns the semi-space size heapForBudget assumes for
// a budget of budgetMB.
func semiSpaceForBudget(budgetMB uint64) uint64 {
	return semiSpaceMB(budgetMB - min(budgetMB, NodeBaseMB))
}

// heapForShare returns heapForBudget of usable bytes split n ways.
func heapForShare(usable uint64, n int) uint64 {
	return heapForBudget(usable / uint64(max(n, 1)) / machine.MiB)
}
