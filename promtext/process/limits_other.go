//go:build !unix

package process

import "github.com/percore/percore/promtext"

// addLimits adds nothing: the system has no resource limits to read.
func addLimits(*promtext.Set, string) error { return nil }
