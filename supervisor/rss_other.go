//go:build !linux

package supervisor

// groupMemory is unknown without /proc: memory recycling is Linux-only.
func groupMemory(pgid int) (uint64, MemoryMeasure, bool) { return 0, MeasureNone, false }

// groupRSS is unknown without /proc.
func groupRSS(pgid int) (uint64, bool) { return 0, false }
