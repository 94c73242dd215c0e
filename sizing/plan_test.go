package sizing

import (
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"strings"
	"testing"
)

func TestNewPlan(t *testing.T) {
	res := func(memMiB uint64, cpus int, swapMiB uint64) machine.Resources {
		return machine.Resources{CPUs: cpus, CPUQuota: float64(cpus), Memory: memMiB * machine.MiB, Swap: swapMiB * machine.MiB}
	}
	node := Request{Memory: jsruntime.HeapCap, SemiSpace: true}
	withSwap := Request{Memory: jsruntime.HeapCap, SemiSpace: true, IncludeSwap: true}
	cases := []struct {
		name      string
		res       machine.Resources
		req       Request
		workers   int
		reason    string
		heapMB    int
		heapWhy   string
		budgetMiB uint64
		spare     bool
		warnings  []string // substrings, one per expected warning
	}{
		{"256MiB 1CPU", res(256, 1, 0), node, 1, "cpus", 134, "auto", 211, false, nil},
		{"256MiB 2CPU fits one worker", res(256, 2, 0), node, 1, "memory: 256MiB fits 1 worker of >= 128MiB heap", 134, "auto", 211, false, nil},
		{"512MiB 2CPU", res(512, 2, 0), node, 2, "cpus", 147, "auto", 227, false, nil},
		{"1GiB 2CPU", res(1024, 2, 0), node, 2, "cpus", 213, "auto", 313, true, nil},
		{"2GiB 4CPU", res(2048, 4, 0), node, 4, "cpus", 268, "auto", 382, true, nil},
		{"256MiB 1CPU swap ignored", res(256, 1, 512), node, 1, "cpus", 134, "auto", 211, false, nil},
		{"256MiB 1CPU with swap", res(256, 1, 512), withSwap, 1, "cpus", 241, "auto", 348, true, nil},
		{"256MiB 2CPU with swap", res(256, 2, 512), withSwap, 2, "cpus", 151, "auto", 232, true, nil},
		{"512MiB 2CPU with swap", res(512, 2, 512), withSwap, 2, "cpus", 213, "auto", 313, true, nil},
		{"1GiB 2CPU with swap", res(1024, 2, 512), withSwap, 2, "cpus", 343, "auto", 475, true, nil},
		{"2GiB 4CPU with swap", res(2048, 4, 512), withSwap, 4, "cpus", 347, "auto", 480, true, nil},
		{"8GiB 16CPU, reserve at its cap", res(8192, 16, 0), node, 16, "cpus", 336, "auto", 466, true, nil},
		{"1GiB 8CPU capped by memory", res(1024, 8, 0), node, 4, "memory: 1.0GiB fits 4 workers of >= 128MiB heap", 153, "auto", 235, false, nil},
		{"64MiB floor", res(64, 1, 0), node, 1, "cpus", HeapFloorMB, "auto, raised to the 64MiB floor", 28, false,
			[]string{"a 28MiB worker budget fits a 0MiB heap; using the 64MiB floor"}},
		{"64MiB 2CPU fits no worker of the minimum heap", res(64, 2, 0), node, 1, "memory: 64MiB fits no worker of >= 128MiB heap; running 1",
			HeapFloorMB, "auto, raised to the 64MiB floor", 28, false, []string{"a 28MiB worker budget fits a 0MiB heap; using the 64MiB floor"}},
		{"explicit workers that fit", res(2048, 4, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Workers: 2, WorkersSource: "--workers"},
			2, "--workers", 468, "auto", 637, true, nil},
		{"explicit workers beyond memory", res(512, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Workers: 4, WorkersSource: "WEB_CONCURRENCY"},
			4, "WEB_CONCURRENCY", 64, "auto, raised to the 64MiB floor", 113, false, []string{
				"a 113MiB worker budget fits a 56MiB heap",
				"WEB_CONCURRENCY 4 is more than the 2 CPUs available",
				"WEB_CONCURRENCY 4 does not fit 512MiB: each worker gets a 64MiB heap (113MiB budget), below the 128MiB minimum heap"}},
		{"explicit workers without source", res(1024, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Workers: 1}, 1, "explicit", 339, "auto", 470, true, nil},
		{"heap off", res(512, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Heap: HeapOff}, 2, "cpus", 0, "off", 227, false, nil},
		{"heap fixed", res(1024, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Heap: HeapFixed, HeapMB: 200}, 2, "cpus", 200, "--heap", 313, true, nil},
		{"heap fixed too large", res(512, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Heap: HeapFixed, HeapMB: 400}, 2, "cpus", 400, "--heap", 227, false,
			[]string{"--heap 400MiB exceeds the 147MiB that fits a 227MiB worker budget"}},
		{"heap fixed without size", res(512, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true, Heap: HeapFixed}, 2, "cpus", 147, "auto", 227, false,
			[]string{"--heap 0MiB is not a size"}},
		{"deno", res(1024, 2, 0), Request{Memory: jsruntime.HeapCap, SemiSpace: true}, 2, "cpus", 213, "auto", 313, true, nil},
		{"bun", res(1024, 2, 0), Request{Memory: jsruntime.RecycleByRSS}, 2, "cpus", 0, "no hard heap cap, recycled by RSS", 313, true, nil},
		{"bun with --heap", res(1024, 2, 0), Request{Memory: jsruntime.RecycleByRSS, Heap: HeapFixed, HeapMB: 100}, 2, "cpus", 0,
			"no hard heap cap, recycled by RSS", 313, true, []string{"--heap is ignored (no hard heap cap, recycled by RSS); workers are recycled at 313MiB RSS"}},
		{"bun explicit workers beyond memory", res(256, 1, 0), Request{Memory: jsruntime.RecycleByRSS, Workers: 3, WorkersSource: "PERCORE_WORKERS"},
			3, "PERCORE_WORKERS", 0, "no hard heap cap, recycled by RSS", 70, false, []string{
				"PERCORE_WORKERS 3 is more than the 1 CPU available",
				"PERCORE_WORKERS 3 does not fit 256MiB: each worker gets a 70MiB RSS budget"}},
		{"other runtime", res(1024, 2, 0), Request{Memory: jsruntime.NoHeapLimit}, 2, "cpus", 0, "no heap flag", 313, true, nil},
		{"unknown memory policy takes no heap", res(1024, 2, 0), Request{Memory: jsruntime.MemoryPolicy(9)}, 2, "cpus", 0, "no heap flag", 313, true, nil},
		{"memory unknown", machine.Resources{CPUs: 3}, node, 3, "cpus", 0, "auto: memory unknown, runtime default", 0, false,
			[]string{"memory size unknown"}},
		{"zero resources", machine.Resources{}, node, 1, "cpus", 0, "auto: memory unknown, runtime default", 0, false,
			[]string{"memory size unknown"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPlan(c.res, c.req)
			if p.Workers != c.workers || p.WorkersReason != c.reason || p.HeapMB != c.heapMB || p.HeapReason != c.heapWhy ||
				p.WorkerBudget/machine.MiB != c.budgetMiB || p.SpareSlot != c.spare {
				t.Errorf("NewPlan = %+v\nwant workers %d (%s), heap %d (%s), budget %dMiB, spare %v",
					p, c.workers, c.reason, c.heapMB, c.heapWhy, c.budgetMiB, c.spare)
			}
			if len(p.Warnings) != len(c.warnings) {
				t.Fatalf("warnings %q, want %d matching %q", p.Warnings, len(c.warnings), c.warnings)
			}
			for i, w := range c.warnings {
				if !strings.Contains(p.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, p.Warnings[i], w)
				}
			}
		})
	}
}

// TestNewPlanFits checks, over a grid of machines, that automatic plans
// keep every worker slot within memory and every heap within its budget.
func TestNewPlanFits(t *testing.T) {
	for memMiB := uint64(128); memMiB <= 64*1024; memMiB = memMiB*5/4 + 1 {
		for cpus := 1; cpus <= 64; cpus *= 2 {
			r := machine.Resources{CPUs: cpus, Memory: memMiB * machine.MiB}
			p := NewPlan(r, Request{Memory: jsruntime.HeapCap, SemiSpace: true})
			slots := uint64(p.Workers)
			if p.SpareSlot {
				slots++
			}
			if p.Workers < 1 || p.Workers > cpus {
				t.Fatalf("%dMiB/%dCPU: %d workers", memMiB, cpus, p.Workers)
			}
			if slots*p.WorkerBudget > r.Memory {
				t.Fatalf("%dMiB/%dCPU: %d slots of %s exceed memory", memMiB, cpus, slots, machine.FormatBytes(p.WorkerBudget))
			}
			if p.HeapMB < HeapFloorMB {
				t.Fatalf("%dMiB/%dCPU: heap %dMiB below the floor", memMiB, cpus, p.HeapMB)
			}
			if p.HeapReason == "auto" && uint64(p.HeapMB)*machine.MiB >= p.WorkerBudget {
				t.Fatalf("%dMiB/%dCPU: heap %dMiB not below budget %s", memMiB, cpus, p.HeapMB, machine.FormatBytes(p.WorkerBudget))
			}
			if p.Workers < cpus && p.HeapMB < MinHeapMB && p.Workers > 1 {
				t.Fatalf("%dMiB/%dCPU: %d workers with a %dMiB heap", memMiB, cpus, p.Workers, p.HeapMB)
			}
			if len(p.Warnings) > 0 && memMiB >= 256 {
				t.Fatalf("%dMiB/%dCPU: warnings %q", memMiB, cpus, p.Warnings)
			}
		}
	}
}

func TestHeapModeString(t *testing.T) {
	for m, want := range map[HeapMode]string{HeapAuto: "auto", HeapOff: "off", HeapFixed: "fixed", HeapMode(9): "auto"} {
		if got := m.String(); got != want {
			t.Errorf("HeapMode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestYoungGen(t *testing.T) {
	for heap, want := range map[uint64]uint64{64: 3, 256: 3, 430: 6, 512: 12, 767: 12, 1024: 24, 2048: 48, 8192: 48} {
		if got := youngGenMB(heap); got != want {
			t.Errorf("youngGenMB(%d) = %d, want %d", heap, got, want)
		}
	}
}

// TestNewPlanUserHeap checks that a heap limit of the user's own is checked
// against the memory like percore's.
func TestNewPlanUserHeap(t *testing.T) {
	node := func(mb int, workers int) Request {
		return Request{Memory: jsruntime.HeapCap, SemiSpace: true, UserHeapMB: mb, UserHeapSource: "NODE_OPTIONS --max-old-space-size", Workers: workers}
	}
	cases := []struct {
		name     string
		memMiB   uint64
		req      Request
		warnings []string
	}{
		{"4096 in 512MiB", 512, node(4096, 0), []string{"NODE_OPTIONS --max-old-space-size=4096 does not fit 512MiB: " +
			"2 workers × (4096MiB heap + 48MiB young generation + 40MiB idle runtime) = 8368MiB, but 454MiB is left for workers; " +
			"the cgroup will kill workers before V8 stops them (percore's heap would be 147MiB)"}},
		{"170 in 512MiB fits the memory, not the budget", 512, node(170, 0), []string{
			"NODE_OPTIONS --max-old-space-size=170 exceeds the 147MiB that fits a 227MiB worker budget"}},
		{"120 in 512MiB", 512, node(120, 0), nil},
		{"0 is V8's default", 512, node(0, 0), nil},
		{"deno in 1GiB", 1024, Request{Memory: jsruntime.HeapCap, SemiSpace: true, UserHeapMB: 2048, UserHeapSource: "DENO_V8_FLAGS --max-old-space-size"},
			[]string{"DENO_V8_FLAGS --max-old-space-size=2048 does not fit 1.0GiB: 2 workers × (2048MiB heap + 48MiB young generation"}},
		{"bun is not checked", 512, Request{Memory: jsruntime.RecycleByRSS, UserHeapMB: 4096, UserHeapSource: "BUN_JSC_forceRAMSize"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPlan(machine.Resources{CPUs: 2, Memory: c.memMiB * machine.MiB}, c.req)
			if p.UserHeapMB != c.req.UserHeapMB || p.UserHeapSource != c.req.UserHeapSource {
				t.Errorf("plan's user heap = %d from %q, want %d from %q", p.UserHeapMB, p.UserHeapSource, c.req.UserHeapMB, c.req.UserHeapSource)
			}
			if len(p.Warnings) != len(c.warnings) {
				t.Fatalf("warnings %q, want %d matching %q", p.Warnings, len(c.warnings), c.warnings)
			}
			for i, w := range c.warnings {
				if !strings.Contains(p.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, p.Warnings[i], w)
				}
			}
		})
	}
}

// TestNewPlanSemiSpace checks that a semi-space size is planned only for a
// runtime that takes one, and that it changes nothing else.
func TestNewPlanSemiSpace(t *testing.T) {
	r := machine.Resources{CPUs: 2, Memory: 512 * machine.MiB}
	for _, heap := range []Request{{Memory: jsruntime.HeapCap}, {Memory: jsruntime.HeapCap, Heap: HeapFixed, HeapMB: 200}} {
		without := NewPlan(r, heap)
		heap.SemiSpace = true
		with := NewPlan(r, heap)
		if without.SemiSpaceMB != 0 || with.SemiSpaceMB == 0 {
			t.Errorf("%+v: semi-space %d without, %d with", heap, without.SemiSpaceMB, with.SemiSpaceMB)
		}
		with.SemiSpaceMB = 0
		if with.HeapMB != without.HeapMB || with.WorkerBudget != without.WorkerBudget || with.Workers != without.Workers {
			t.Errorf("%+v: plan %+v with a semi-space, %+v without", heap, with, without)
		}
	}
}
