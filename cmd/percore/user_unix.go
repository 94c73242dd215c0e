//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// drop makes percore itself the user, once its listeners are open: from
// then on it starts workers as that user and keeps no more privilege than
// they have. Go applies these calls to every thread of the process.
func (r *runAs) drop() error {
	if err := syscall.Setgroups(r.groups); err != nil {
		return fmt.Errorf("--user %s: set groups: %w", r.spec, err)
	}
	if err := syscall.Setgid(r.gid); err != nil {
		return fmt.Errorf("--user %s: set gid %d: %w", r.spec, r.gid, err)
	}
	if err := syscall.Setuid(r.uid); err != nil {
		return fmt.Errorf("--user %s: set uid %d: %w", r.spec, r.uid, err)
	}
	return nil
}
