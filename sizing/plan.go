package sizing

import (
	"fmt"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
)

// HeapMode says how the heap limit is chosen.
type HeapMode int

// Heap modes.
const (
	HeapAuto  HeapMode = iota // derive the heap from the worker's memory budget
	HeapOff                   // pass no heap flag; the runtime's default applies
	HeapFixed                 // use Request.HeapMB as given
)

// String returns "auto", "off" or "fixed".
func (m HeapMode) String() string {
	switch m {
	case HeapOff:
		return "off"
	case HeapFixed:
		return "fixed"
	default:
		return "auto"
	}
}

// Request is what the user asked for.
type Request struct {
	Workers       int    // 0 = auto
	WorkersSource string // "--workers", "PERCORE_WORKERS", "WEB_CONCURRENCY"; "" when auto
	Heap          HeapMode
	HeapMB        int // with HeapFixed
	IncludeSwap   bool
	// Memory is how the runtime's memory is bounded (NoHeapLimit by
	// default).
	Memory jsruntime.MemoryPolicy
	// SemiSpace says that the runtime takes a V8 semi-space size with its
	// heap limit, which the plan then computes (Plan.SemiSpaceMB).
	SemiSpace bool
	// UserHeapMB is a heap limit in MiB that the user set for a HeapCap
	// runtime (NODE_OPTIONS, argv, DENO_V8_FLAGS), which the runtime is left
	// to use instead of percore's; 0 with UserHeapSource set is V8's "no
	// limit".
	UserHeapMB int
	// UserHeapSource says where UserHeapMB was found, as
	// "NODE_OPTIONS --max-old-space-size"; "" when the user set none.
	UserHeapSource string
}

// Plan is the worker count and per-worker memory derived from machine.Resources and
// a Request.
type Plan struct {
	Workers        int      // worker processes to keep running
	WorkersReason  string   // e.g. "cpus", "--workers", "memory: 256MiB fits 1 worker of >= 128MiB heap"
	HeapMB         int      // V8 old-space machine.MiB to pass (the --max-old-space-size number); 0 = pass nothing
	HeapReason     string   // "auto", "--heap", "off", "no hard heap cap, recycled by RSS"
	SemiSpaceMB    int      // V8 semi-space machine.MiB to pass with HeapMB (the --max-semi-space-size number); 0 = pass nothing
	WorkerBudget   uint64   // bytes of RSS one worker may use; without a hard heap cap, the RSS recycle limit
	SpareSlot      bool     // the budget leaves room for one extra worker, so a replacement may start before the old one stops
	UserHeapMB     int      // the user's own heap limit in force instead of HeapMB (Request.UserHeapMB)
	UserHeapSource string   // where the user's limit was set (Request.UserHeapSource); "" when percore's HeapMB is in force
	Warnings       []string // e.g. an explicit worker count that does not fit memory
}

// NewPlan sizes workers for r as req asks; the rules are in the package
// documentation. A zero Memory is taken as unknown: the worker count then
// follows the CPUs alone and no heap limit is computed.
func NewPlan(r machine.Resources, req Request) Plan {
	total := r.Memory
	if req.IncludeSwap {
		total += r.Swap
	}
	usable := usableMemory(total)
	p := Plan{}
	p.Workers, p.WorkersReason = workerCount(r, req, total, usable)
	slots := p.Workers
	if r.Memory > 0 && heapForShare(usable, slots+1) >= MinHeapMB {
		slots++
		p.SpareSlot = true
	}
	p.WorkerBudget = usable / uint64(slots)
	p.chooseHeap(req, r.Memory > 0)
	p.warnFit(r, req, total, usable)
	p.checkUserHeap(req, total, usable)
	return p
}

// workerCount returns the worker count and the reason for it.
func workerCount(r machine.Resources, req Request, total, usable uint64) (int, string) {
	if req.Workers > 0 {
		src := req.WorkersSource
		if src == "" {
			src = "explicit"
		}
		return req.Workers, src
	}
	cpus := max(r.CPUs, 1)
	if r.Memory == 0 {
		return cpus, "cpus"
	}
	n := cpus
	for n > 1 && heapForShare(usable, n) < MinHeapMB {
		n--
	}
	if n == cpus {
		return n, "cpus"
	}
	if heapForShare(usable, n) < MinHeapMB {
		return n, fmt.Sprintf("memory: %s fits no worker of >= %dMiB heap; running 1", machine.FormatBytes(total), MinHeapMB)
	}
	return n, fmt.Sprintf("memory: %s fits %d %s of >= %dMiB heap",
		machine.FormatBytes(total), n, plural(n, "worker"), MinHeapMB)
}

// chooseHeap sets HeapMB and HeapReason from the mode, memory policy and
// budget.
func (p *Plan) chooseHeap(req Request, memoryKnown bool) {
	switch req.Memory {
	case jsruntime.HeapCap:
	case jsruntime.RecycleByRSS:
		p.HeapReason = "no hard heap cap, recycled by RSS"
	default:
		p.HeapReason = "no heap flag"
	}
	switch {
	case req.Memory != jsruntime.HeapCap:
		if req.Heap == HeapFixed {
			p.warn("--heap is ignored (%s); workers are recycled at %s RSS", p.HeapReason, machine.FormatBytes(p.WorkerBudget))
		}
	case req.Heap == HeapOff:
		p.HeapReason = "off"
	case req.Heap == HeapFixed && req.HeapMB > 0:
		p.HeapMB, p.HeapReason = req.HeapMB, "--heap"
		if req.SemiSpace {
			p.SemiSpaceMB = int(semiSpaceMB(uint64(req.HeapMB)))
		}
	case !memoryKnown:
		p.HeapReason = "auto: memory unknown, runtime default"
		p.warn("memory size unknown; no heap limit is set")
	default:
		if req.Heap == HeapFixed {
			p.warn("--heap %dMiB is not a size; using auto", req.HeapMB)
		}
		p.autoHeap(req.SemiSpace)
	}
}

// autoHeap derives the heap from the worker budget, raised to HeapFloorMB,
// and with semiSpace the semi-space size.
func (p *Plan) autoHeap(semiSpace bool) {
	h := heapForBudget(p.WorkerBudget / machine.MiB)
	p.HeapMB, p.HeapReason = int(h), "auto"
	if semiSpace {
		p.SemiSpaceMB = int(semiSpaceForBudget(p.WorkerBudget / machine.MiB))
	}
	if h < HeapFloorMB {
		p.HeapMB, p.HeapReason = HeapFloorMB, fmt.Sprintf("auto, raised to the %dMiB floor", HeapFloorMB)
		p.warn("a %s worker budget fits a %dMiB heap; using the %dMiB floor, so the cgroup may kill workers before V8 stops them",
			machine.FormatBytes(p.WorkerBudget), h, HeapFloorMB)
	}
}

// warnFit adds warnings for explicit choices that do not fit the machine.
func (p *Plan) warnFit(r machine.Resources, req Request, total, usable uint64) {
	if req.Workers > 0 && r.CPUs > 0 && req.Workers > r.CPUs {
		p.warn("%s %d is more than the %d %s available", p.WorkersReason, req.Workers, r.CPUs, plural(r.CPUs, "CPU"))
	}
	if req.Workers > 0 && r.Memory > 0 && heapForShare(usable, req.Workers) < MinHeapMB {
		p.warn("%s %d does not fit %s: each worker gets %s, below the %dMiB minimum heap",
			p.WorkersReason, req.Workers, machine.FormatBytes(total), p.eachGets(), MinHeapMB)
	}
	if p.HeapReason == "--heap" && r.Memory > 0 {
		if fit := heapForBudget(p.WorkerBudget / machine.MiB); uint64(p.HeapMB) > fit {
			p.warn("--heap %dMiB exceeds the %dMiB that fits a %s worker budget; the cgroup may kill workers before V8 stops them",
				p.HeapMB, fit, machine.FormatBytes(p.WorkerBudget))
		}
	}
}

// checkUserHeap records the user's own heap setting and warns, with the
// numbers, when it does not fit: when the workers with that heap, their
// young generations and idle runtimes need more than the memory left for
// workers, or, like --heap, when it exceeds the heap that fits a worker's
// budget, so that the cgroup would stop workers before V8 does.
func (p *Plan) checkUserHeap(req Request, total, usable uint64) {
	if req.UserHeapSource == "" {
		return
	}
	p.UserHeapMB, p.UserHeapSource = req.UserHeapMB, req.UserHeapSource
	if req.Memory != jsruntime.HeapCap || req.UserHeapMB <= 0 || total == 0 {
		return
	}
	heap := uint64(req.UserHeapMB)
	young := youngGenMB(heap)
	need := uint64(p.Workers) * (heap + young + NodeBaseMB)
	setting := fmt.Sprintf("%s=%d", req.UserHeapSource, req.UserHeapMB)
	if need*machine.MiB > usable {
		p.warn("%s does not fit %s: %d %s × (%dMiB heap + %dMiB young generation + %dMiB idle runtime) = %dMiB, but %s is left for workers; "+
			"the cgroup will kill workers before V8 stops them (percore's heap would be %dMiB)",
			setting, machine.FormatBytes(total), p.Workers, plural(p.Workers, "worker"), heap, young, NodeBaseMB, need, machine.FormatBytes(usable), p.HeapMB)
		return
	}
	if fit := heapForBudget(p.WorkerBudget / machine.MiB); heap > fit {
		p.warn("%s exceeds the %dMiB that fits a %s worker budget; the cgroup may kill workers before V8 stops them",
			setting, fit, machine.FormatBytes(p.WorkerBudget))
	}
}

// YoungGenMB is the V8 young generation that SemiSpaceMB gives: two
// semi-spaces and a new large-object space of the same size; 0 when no
// semi-space size is passed.
func (p Plan) YoungGenMB() int {
	return 3 * p.SemiSpaceMB
}

// eachGets describes the memory one worker gets, for warnings.
func (p *Plan) eachGets() string {
	if p.HeapMB > 0 {
		return fmt.Sprintf("a %dMiB heap (%s budget)", p.HeapMB, machine.FormatBytes(p.WorkerBudget))
	}
	return fmt.Sprintf("a %s RSS budget", machine.FormatBytes(p.WorkerBudget))
}

// warn appends a warning.
func (p *Plan) warn(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// plural returns word with an "s" unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
