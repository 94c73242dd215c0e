//go:build !linux

package direct

import "os"

// attachSteering does nothing: direct mode runs only on Linux.
func attachSteering(*os.File, []sockFilter) error { return errLinuxOnly }
