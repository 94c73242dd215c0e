package watch

import "fmt"

// LimitError says the system's limit on file watches was reached, so that
// not every directory could be watched, and how to raise the limit.
type LimitError struct {
	Sysctl  string // the setting, such as fs.inotify.max_user_watches
	Limit   string // its value now
	Raise   string // a value to raise it to
	Watched int    // directories watched before the limit was hit
	Err     error
}

// Error implements error.
func (e *LimitError) Error() string {
	return fmt.Sprintf("watch: the system's limit on file watches is reached after %d directories "+
		"(%s = %s, shared by every program of this user): raise it with "+
		"`sudo sysctl %s=%s` (add the line %s=%s to a file in /etc/sysctl.d to keep it), "+
		"or watch less with --watch PATHS or --watch-ignore GLOB: %v",
		e.Watched, e.Sysctl, e.Limit, e.Sysctl, e.Raise, e.Sysctl, e.Raise, e.Err)
}

// Unwrap returns the system's error.
func (e *LimitError) Unwrap() error { return e.Err }
