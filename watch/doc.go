// Package watch reloads the app when its files change: it watches directory
// trees with fsnotify (inotify on Linux, kqueue on macOS), adding directories
// as they appear and dropping them as they go, folds a burst of changes into
// one, and asks a Reloader for a rolling reload. Changes that arrive during
// a reload queue one more reload, never a pile.
//
// It is not a poller, a process manager or a build tool: it never starts or
// stops processes itself and knows nothing of the workers; the Reloader
// (percore's supervisor, wired in cmd/percore) does the reload and keeps the
// old workers serving when the new code fails.
package watch
