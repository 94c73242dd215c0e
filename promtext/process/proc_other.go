//go:build !linux

package process

import "github.com/percore/percore/promtext"

// addProc adds nothing: there is no /proc to read.
func addProc(*promtext.Set, string) error { return nil }
