//go:build !darwin

package machine

import "errors"

// physicalMemory has no source besides /proc/meminfo on this platform.
func physicalMemory() (uint64, error) {
	return 0, errors.New("no physical memory source besides /proc/meminfo")
}
