package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// launcherGone is the signal the kernel sends percore when the launcher
// ends (PR_SET_PDEATHSIG). It is not SIGTERM because it may come more than
// once for one end: the kernel sends it each time percore passes from one
// thread of the dying launcher to another (Node runs about ten), and a
// second SIGTERM means "stop fast". percore takes the first as SIGTERM and
// the rest as the same event. SIGPWR is otherwise unused by percore (and
// is the signal LXC stops a container's init with).
const launcherGone = syscall.SIGPWR

// followLauncher makes percore stop gracefully when launcher, its parent
// process, ends: the kernel then sends percore launcherGone, which reaches
// sigs; if the launcher has ended already, sigs gets it now. Call it again
// after a change of user, which clears the setting.
//
// The kernel keeps the setting per thread and forgets it when that thread
// ends (golang/go#27505), so followLauncher locks the calling goroutine to
// its thread for good: it must be main's goroutine, which lives as long as
// percore does.
func followLauncher(launcher int, sigs chan os.Signal) error {
	signal.Notify(sigs, launcherGone)
	runtime.LockOSThread() // never unlocked
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(launcherGone), 0, 0, 0); err != nil {
		return fmt.Errorf("ask for a signal when the launcher (pid %d) ends: %w", launcher, err)
	}
	if unix.Getppid() != launcher {
		select {
		case sigs <- launcherGone:
		default: // full of signals already
		}
	}
	return nil
}
