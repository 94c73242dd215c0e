// Package process adds the running process's own resource usage to a
// promtext.Set, under the names the Prometheus Go client's process collector
// uses.
package process

import (
	"errors"

	"github.com/percore/percore/promtext"
)

// Help texts, as the Prometheus Go client writes them.
const (
	helpCPU       = "Total user and system CPU time spent in seconds."
	helpOpenFDs   = "Number of open file descriptors."
	helpMaxFDs    = "Maximum number of open file descriptors."
	helpVSize     = "Virtual memory size in bytes."
	helpMaxVSize  = "Maximum amount of virtual memory available in bytes."
	helpRSS       = "Resident memory size in bytes."
	helpStartTime = "Start time of the process since unix epoch in seconds."
)

// Add adds to s the metrics of the running process that the system reports:
// <namespace>_process_cpu_seconds_total, _open_fds, _max_fds,
// _virtual_memory_bytes, _virtual_memory_max_bytes, _resident_memory_bytes
// and _start_time_seconds (process_... when namespace is empty).
//
// On Linux they all come from /proc/self and the resource limits; on other
// systems only the limits are read. A limit that is unlimited is written as
// -1. What could not be read is left out, and the errors are returned
// joined.
func Add(s *promtext.Set, namespace string) error {
	prefix := "process_"
	if namespace != "" {
		prefix = namespace + "_process_"
	}
	return errors.Join(addProc(s, prefix), addLimits(s, prefix))
}
