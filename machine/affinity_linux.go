//go:build linux

package machine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// schedAffinity counts the CPUs in the process's affinity mask.
func schedAffinity() (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, fmt.Errorf("sched_getaffinity: %w", err)
	}
	return set.Count(), nil
}
