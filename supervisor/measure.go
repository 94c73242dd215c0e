package supervisor

// MemoryMeasure is how a worker's memory was counted.
type MemoryMeasure int

// The measures of a worker's memory.
const (
	MeasureNone MemoryMeasure = iota // not measured
	MeasurePSS                       // the sum of its processes' PSS: shared pages divided among those sharing them
	MeasureRSS                       // the sum of their RSS, where PSS could not be read: shared pages count in each
)

// String returns "pss" or "rss" as /status shows it, and "" when not
// measured.
func (m MemoryMeasure) String() string {
	switch m {
	case MeasurePSS:
		return "pss"
	case MeasureRSS:
		return "rss"
	default:
		return ""
	}
}

// treeUse is what one walk of a worker's process tree measured.
type treeUse struct {
	rss     uint64        // the sum of the processes' RSS
	pss     uint64        // the sum of their PSS, or of their RSS where it cannot be read; 0 unless read
	measure MemoryMeasure // how pss was counted; MeasureNone when PSS was not read
}
