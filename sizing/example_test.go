package sizing_test

import (
	"fmt"

	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/sizing"
)

func ExampleNewPlan() {
	r := machine.Resources{
		CPUs: 2, CPUQuota: 1.5, CPUSource: "cgroup v2 cpu.max",
		Memory: 512 << 20, MemorySource: "cgroup v2 memory.max",
		Cgroup: "v2",
	}
	p := sizing.NewPlan(r, sizing.Request{Memory: jsruntime.HeapCap, SemiSpace: true})
	fmt.Printf("workers: %d (%s)\n", p.Workers, p.WorkersReason)
	fmt.Printf("node --max-old-space-size=%d (%s)\n", p.HeapMB, p.HeapReason)
	fmt.Printf("budget: %s per worker, spare slot: %v\n", machine.FormatBytes(p.WorkerBudget), p.SpareSlot)

	r.Memory = 256 << 20
	p = sizing.NewPlan(r, sizing.Request{Memory: jsruntime.HeapCap, SemiSpace: true})
	fmt.Printf("workers: %d (%s)\n", p.Workers, p.WorkersReason)
	// Output:
	// workers: 2 (cpus)
	// node --max-old-space-size=147 (auto)
	// budget: 227MiB per worker, spare slot: false
	// workers: 1 (memory: 256MiB fits 1 worker of >= 128MiB heap)
}
