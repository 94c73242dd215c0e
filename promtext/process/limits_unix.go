//go:build unix

package process

import (
	"errors"
	"fmt"

	"github.com/percore/percore/promtext"
	"golang.org/x/sys/unix"
)

// addLimits adds the soft limits on open files and address space.
func addLimits(s *promtext.Set, prefix string) error {
	var errs []error
	if n, err := softLimit(unix.RLIMIT_NOFILE); err != nil {
		errs = append(errs, fmt.Errorf("read open files limit: %w", err))
	} else {
		s.Gauge(prefix+"max_fds", helpMaxFDs).Add(n)
	}
	if n, err := softLimit(unix.RLIMIT_AS); err != nil {
		errs = append(errs, fmt.Errorf("read address space limit: %w", err))
	} else {
		s.Gauge(prefix+"virtual_memory_max_bytes", helpMaxVSize).Add(n)
	}
	return errors.Join(errs...)
}

// softLimit returns the soft limit on resource, -1 when unlimited.
func softLimit(resource int) (float64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(resource, &rl); err != nil {
		return 0, err
	}
	if rl.Cur == unix.RLIM_INFINITY {
		return -1, nil
	}
	return float64(rl.Cur), nil
}
