package machine

// Resources is what the process may really use, each figure with where it
// came from.
type Resources struct {
	CPUs         int      // whole CPUs workers may use, after the rounding rule, >= 1
	CPUQuota     float64  // exact CPU limit in CPUs (quota/period, or affinity/cpuset count when no quota)
	CPUSource    string   // "affinity", "cpuset", "cgroup v2 cpu.max", "cgroup v1 cpu.cfs_quota_us", with the cgroup path when from an ancestor
	Memory       uint64   // bytes usable (cgroup limit, else MemTotal)
	MemorySource string   // "cgroup v2 memory.max", "cgroup v1 memory.limit_in_bytes", "/proc/meminfo"
	Swap         uint64   // bytes of swap usable (0 when none)
	SwapSource   string   // "cgroup v2 memory.swap.max", "cgroup v1 memory.memsw.limit_in_bytes", "/proc/meminfo"
	Cgroup       string   // "v2", "v1", "hybrid" (v1 controllers + unified mount without them), or "none"
	Notes        []string // anything worth a log line: malformed files that were skipped, fallbacks taken
}

// Detector reads resources below Root. Affinity, when nil, is
// sched_getaffinity (Linux) or runtime.NumCPU (elsewhere). PhysMem is asked
// for the physical memory size only when /proc/meminfo is unusable; when nil
// it is sysctl hw.memsize on darwin and unavailable elsewhere.
type Detector struct {
	Root     string
	Affinity func() (int, error)
	PhysMem  func() (uint64, error)
}

// Detect reads the CPU and memory limits of the current process. It fails
// only when no memory figure at all can be found; everything else that is
// missing or malformed is replaced by a safe fallback and described in
// Resources.Notes.
func (d Detector) Detect() (Resources, error) {
	rd := &reader{root: d.Root}
	if rd.root == "" {
		rd.root = "/"
	}
	affinity, physMem := d.Affinity, d.PhysMem
	if affinity == nil {
		affinity = schedAffinity
	}
	if physMem == nil {
		physMem = physicalMemory
	}
	cg := rd.discover()
	cpu := rd.detectCPU(cg, affinity)
	mem, err := rd.detectMemory(cg, physMem)
	if err != nil {
		return Resources{}, err
	}
	return Resources{
		CPUs:         cpu.cpus,
		CPUQuota:     cpu.quota,
		CPUSource:    cpu.source,
		Memory:       mem.memory,
		MemorySource: mem.memorySource,
		Swap:         mem.swap,
		SwapSource:   mem.swapSource,
		Cgroup:       cg.mode.String(),
		Notes:        rd.notes,
	}, nil
}

// Detect is Detector{Root: "/"}.Detect().
func Detect() (Resources, error) {
	return Detector{Root: "/"}.Detect()
}
