package supervisor

import (
	"fmt"
	"syscall"
)

// Exit is how a worker process ended.
type Exit struct {
	// Code is the exit code, or -1 when a signal ended the process.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
	// OOMKilled says the kernel's OOM killer sent the SIGKILL, as far as
	// the memory cgroup's count of OOM kills tells.
	OOMKilled bool
}

// exitFromWaitStatus converts a wait status into an Exit.
func exitFromWaitStatus(ws syscall.WaitStatus) Exit {
	if ws.Signaled() {
		return Exit{Code: -1, Signal: ws.Signal()}
	}
	return Exit{Code: ws.ExitStatus()}
}

// String says how the process ended: "exit code 1", "signal killed" or
// "signal killed by the kernel OOM killer".
func (e Exit) String() string {
	if e.OOMKilled {
		return fmt.Sprintf("signal %s by the kernel OOM killer", e.Signal)
	}
	if e.Signal != 0 {
		return fmt.Sprintf("signal %s", e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// ShellCode is the code a shell would report: the exit code, or 128+signal.
func (e Exit) ShellCode() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}
