//go:build !linux

package watch

// limitError recognises inotify's limits, which only Linux has.
func limitError(err error, watched int) error { return nil }
