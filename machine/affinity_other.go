//go:build !linux

package machine

import "runtime"

// schedAffinity is runtime.NumCPU where there is no sched_getaffinity.
func schedAffinity() (int, error) {
	return runtime.NumCPU(), nil
}
