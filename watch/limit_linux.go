package watch

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// limitError returns a *LimitError when err is inotify's limit on watches
// (ENOSPC) or on instances (EMFILE), after watched directories; else nil.
func limitError(err error, watched int) error {
	var sysctl, raise string
	switch {
	case errors.Is(err, syscall.ENOSPC):
		sysctl, raise = "fs.inotify.max_user_watches", "524288"
	case errors.Is(err, syscall.EMFILE):
		sysctl, raise = "fs.inotify.max_user_instances", "1024"
	default:
		return nil
	}
	limit := "?"
	if b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(sysctl, ".", "/")); err == nil {
		limit = strings.TrimSpace(string(b))
	}
	return &LimitError{Sysctl: sysctl, Limit: limit, Raise: raise, Watched: watched, Err: err}
}
