//go:build !linux

package main

import (
	"os"
	"syscall"
)

// launcherGone never comes here: only Linux sends a signal when a parent
// ends. The launcher itself stops percore when whoever started it ends.
const launcherGone = syscall.Signal(-1)

// followLauncher does nothing here (see launcherGone).
func followLauncher(launcher int, sigs chan os.Signal) error {
	return nil
}
