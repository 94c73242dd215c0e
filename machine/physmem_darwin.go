//go:build darwin

package machine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// physicalMemory reads the hw.memsize sysctl.
func physicalMemory() (uint64, error) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0, fmt.Errorf("sysctl hw.memsize: %w", err)
	}
	return n, nil
}
