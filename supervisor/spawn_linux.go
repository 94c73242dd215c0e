//go:build linux

package supervisor

import "syscall"

// workerSysProcAttr puts the worker in a process group of its own, so that a
// signal reaches the whole tree a wrapper such as npm starts, and asks the
// kernel to SIGKILL the worker if percore dies, even by SIGKILL.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
