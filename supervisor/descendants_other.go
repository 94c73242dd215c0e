//go:build !linux

package supervisor

import (
	"syscall"
	"time"
)

// procfs finds no processes where there is no /proc: outside Linux a
// worker's family is its process group, which its stop signal reaches.
type procfs struct{}

func (procfs) proc(pid int) (proc, bool)                  { return proc{}, false }
func (procfs) children(pid int) []int                     { return nil }
func (procfs) workerKey(pid int) string                   { return "" }
func signalProc(p proc, sig syscall.Signal) (bool, error) { return false, nil }
func awaitEnd(ps []proc, deadline time.Time) []proc       { return nil }
