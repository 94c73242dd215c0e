package sizing

import (
	"fmt"
	"math"
	"strings"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
)

// Settings are the user's choices that a plan follows.
type Settings struct {
	// Workers is the worker count asked for; 0: as many as the CPUs and
	// the memory allow.
	Workers int
	// WorkersSource says where Workers was set ("--workers",
	// "PERCORE_WORKERS", "WEB_CONCURRENCY", "scale"); "" when automatic.
	WorkersSource string
	Heap          HeapMode
	HeapMB        int // with HeapFixed
	IncludeSwap   bool
	// MaxMemoryMB is --max-memory, each worker's memory budget in MiB for
	// the guard, when MaxMemorySet; set with 0 it turns the guard off.
	MaxMemoryMB  int
	MaxMemorySet bool
}

// Planner makes the plans of one command.
type Planner struct {
	Settings Settings
	Runtime  jsruntime.Runtime
	Runtimes jsruntime.Registry
	Command  []string
	Env      []string // the environment the workers start with
}

// Sized is a plan with everything that went into it and what percore
// hands on: the heap setting the runtime gets and the memory guard's
// limits.
type Sized struct {
	Plan
	Resources machine.Resources
	Runtime   jsruntime.Runtime
	// RuntimeHeapMB is the heap setting handed to the runtime: HeapMB, or
	// for a runtime with no hard heap cap (Bun) the worker's budget, as
	// the RAM size its collector plans for.
	RuntimeHeapMB int
	// GuardBudget is the resident memory in bytes at which a worker is
	// recycled; 0: the guard is off.
	GuardBudget uint64
	// GuardHard is the resident memory at which a worker is killed at once;
	// math.MaxUint64 where no cgroup limits the memory (recycle, never kill).
	GuardHard uint64
}

// Hard-limit margin of the guard above the budget where a cgroup limits the
// memory (elsewhere workers are only recycled): budget + max(32MiB, 10%),
// but no more than half the memory the plan keeps back, shared among the
// worker slots, so that workers killed at the hard limit still leave
// percore and the kernel room below the cgroup's limit.
const (
	hardMarginMinMB   = 32
	hardMarginPercent = 10
)

// Plan sizes the workers for res, checking a heap limit that the command
// or its environment sets like percore's own.
func (pl Planner) Plan(res machine.Resources) (Sized, error) {
	userMB, userAt, err := pl.userHeap()
	if err != nil {
		return Sized{}, err
	}
	st := pl.Settings
	p := NewPlan(res, Request{
		Workers: st.Workers, WorkersSource: st.WorkersSource,
		Heap: st.Heap, HeapMB: st.HeapMB, IncludeSwap: st.IncludeSwap,
		Memory: pl.Runtime.Memory, SemiSpace: pl.Runtime.SemiSpace,
		UserHeapMB: userMB, UserHeapSource: userAt,
	})
	s := Sized{Plan: p, Resources: res, Runtime: pl.Runtime}
	s.RuntimeHeapMB = s.HeapMB
	if pl.Runtime.Memory == jsruntime.RecycleByRSS && s.HeapMB == 0 && st.Heap == HeapAuto {
		s.RuntimeHeapMB = int(s.WorkerBudget / machine.MiB)
	}
	s.GuardBudget, s.GuardHard = s.guard(st)
	return s, nil
}

// MemoryLimited reports whether a memory cgroup limits percore.
func (s Sized) MemoryLimited() bool {
	return strings.HasPrefix(s.Resources.MemorySource, "cgroup")
}

// guard returns the memory guard's limits: --max-memory when given, else
// the worker's budget where a cgroup limits the memory or the runtime has
// no hard heap cap.
func (s Sized) guard(st Settings) (budget, hard uint64) {
	switch {
	case st.MaxMemorySet:
		budget = uint64(st.MaxMemoryMB) * machine.MiB
	case s.MemoryLimited() || s.Runtime.Memory == jsruntime.RecycleByRSS:
		budget = s.WorkerBudget
	}
	if budget == 0 {
		return 0, 0
	}
	if !s.MemoryLimited() {
		return budget, math.MaxUint64
	}
	margin := max(hardMarginMinMB*machine.MiB, budget/100*hardMarginPercent)
	slots := uint64(s.Workers)
	if s.SpareSlot {
		slots++
	}
	if used := s.WorkerBudget * slots; s.Resources.Memory > used {
		margin = min(margin, (s.Resources.Memory-used)/2/slots)
	}
	return budget, budget + margin
}

// userHeap returns the heap limit that the command or its environment sets
// for the runtime and where, as "NODE_OPTIONS --max-old-space-size"; ""
// when none is set. Without a command it looks for the runtime's own
// variables in the environment.
func (pl Planner) userHeap() (int, string, error) {
	rt := pl.Runtime
	argv := pl.Command
	if len(argv) == 0 {
		argv = []string{rt.String()}
		if len(rt.Binaries) > 0 {
			argv[0] = rt.Binaries[0]
		}
	}
	_, a, err := pl.Runtimes.Prepare(jsruntime.Worker{Argv: argv, Env: pl.Env}, jsruntime.Options{Runtime: rt})
	if err != nil {
		return 0, "", fmt.Errorf("prepare the worker command: %w", err)
	}
	if a.UserHeapAt == "" || rt.Memory != jsruntime.HeapCap {
		// A setting of a runtime without a hard heap cap (Bun's
		// BUN_JSC_forceRAMSize) caps nothing; the plan line reports it.
		return 0, "", nil
	}
	return a.UserHeapMB, a.UserHeapAt + " " + rt.HeapSetting, nil
}

// Line is the plan line percore logs at start-up; a says what the runtime
// was given.
func (s Sized) Line(a jsruntime.Applied) string {
	heap := "none"
	switch {
	case a.UserHeapAt != "":
		heap = fmt.Sprintf("%dMiB each (your setting in %s; percore's would be %dMiB)", a.UserHeapMB, a.UserHeapAt, s.HeapMB)
	case s.HeapMB > 0:
		heap = fmt.Sprintf("%dMiB each (%s)", s.HeapMB, s.HeapReason)
	case s.HeapReason != "":
		heap = "none (" + s.HeapReason + ")"
	}
	res := s.Resources
	return fmt.Sprintf("plan: cpus=%d (%s) memory=%s (%s) workers=%d (%s) heap=%s runtime=%s",
		res.CPUs, res.CPUSource, machine.FormatBytes(res.Memory), res.MemorySource,
		s.Workers, s.WorkersReason, heap, s.Runtime)
}

// Diff says what changed from a to b, as "workers 2→3, heap 147→86MiB,
// budget 227→151MiB"; "" when nothing that workers run by changed.
func Diff(a, b Sized) string {
	var out []string
	add := func(name string, x, y any, unit string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %v→%v%s", name, x, y, unit))
		}
	}
	add("cpus", a.Resources.CPUs, b.Resources.CPUs, "")
	if a.Resources.Memory != b.Resources.Memory {
		out = append(out, "memory "+machine.FormatBytes(a.Resources.Memory)+"→"+machine.FormatBytes(b.Resources.Memory))
	}
	add("workers", a.Workers, b.Workers, "")
	add("heap", a.RuntimeHeapMB, b.RuntimeHeapMB, "MiB")
	add("semi-space", a.SemiSpaceMB, b.SemiSpaceMB, "MiB")
	add("budget", a.WorkerBudget/machine.MiB, b.WorkerBudget/machine.MiB, "MiB")
	if a.GuardHard != b.GuardHard && b.GuardHard != math.MaxUint64 && a.GuardHard != math.MaxUint64 {
		add("hard limit", a.GuardHard/machine.MiB, b.GuardHard/machine.MiB, "MiB")
	}
	add("spare slot", a.SpareSlot, b.SpareSlot, "")
	return strings.Join(out, ", ")
}

// NeedsNewWorkers reports whether workers started under a must be replaced
// to run by b: their heap flags differ and a cgroup limits the memory, so
// that heaps sized for another plan could together pass the limit. Where
// nothing limits the memory, the heap is a cap far above what a worker
// uses: new workers get the new flags and the running ones are kept. A
// budget alone needs no new workers either: the guard recycles a worker
// above the new one.
func NeedsNewWorkers(a, b Sized) bool {
	return b.MemoryLimited() && (a.RuntimeHeapMB != b.RuntimeHeapMB || a.SemiSpaceMB != b.SemiSpaceMB)
}
