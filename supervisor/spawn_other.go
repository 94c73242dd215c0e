//go:build !linux

package supervisor

import "syscall"

// workerSysProcAttr puts the worker in a process group of its own. Systems
// other than Linux have no parent-death signal: a worker outlives a percore
// that is killed with SIGKILL.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
