package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// changes are the paths changed since the last reload started.
type changes struct {
	first string // the first path that changed, relative to its root
	seen  map[string]bool
	since time.Time // when the first change came
}

func (c *changes) add(shown, abs string) {
	if c.seen == nil {
		c.seen, c.first, c.since = map[string]bool{}, shown, time.Now()
	}
	c.seen[abs] = true
}

func (c *changes) empty() bool { return len(c.seen) == 0 }

// ended is a reload's outcome, sent by its goroutine to Run.
type ended struct {
	changes changes
	result  Result
	err     error
}

// Run watches until Stop and reloads after each burst of changes; at most
// one reload runs at a time, and changes during a reload make one more.
// It returns nil after Stop, or an error when the watcher fails.
func (w *Watcher) Run() error {
	defer w.fs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		batch   changes
		running bool
		done    = make(chan ended, 1)
	)
	arm := func() {
		wait := w.cfg.Debounce
		if left := maxDelay - time.Since(batch.since); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-w.stop:
			cancel()
			if running {
				<-done
			}
			return nil
		case ev, ok := <-w.fs.Events:
			if !ok {
				return errors.New("watch: the file watcher closed")
			}
			if shown, ok := w.handle(ev); ok {
				batch.add(shown, ev.Name)
				if !running {
					arm()
				}
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return errors.New("watch: the file watcher closed")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Changes were lost: reload to be sure the code is current.
				w.log.Warn("too many changes at once for the watcher; reloading to be safe", "error", err)
				batch.add("(event queue overflow)", "")
				if !running {
					arm()
				}
				continue
			}
			w.log.Error("file watcher error", "error", err)
		case <-timer.C:
			if running || batch.empty() {
				continue
			}
			running = true
			go w.reload(ctx, batch, done)
			batch = changes{}
		case e := <-done:
			running = false
			w.report(e)
			if !batch.empty() {
				batch.since = time.Now()
				arm()
			}
		}
	}
}

// reload runs one reload for c and sends its outcome to done.
func (w *Watcher) reload(ctx context.Context, c changes, done chan<- ended) {
	r, err := w.cfg.Reloader.Reload(ctx)
	done <- ended{changes: c, result: r, err: err}
}

// report logs the one line that says how a reload went.
func (w *Watcher) report(e ended) {
	if e.err != nil {
		w.log.Debug("reload not done", "error", e.err) // stopping
		return
	}
	kv := []any{"changed", e.changes.first, "changes", len(e.changes.seen),
		"took", e.result.Took.Round(time.Millisecond), "replaced", e.result.Replaced}
	if e.result.Failed {
		w.log.Error("reload failed: the previous version is still serving; the next save tries again", kv...)
		return
	}
	w.log.Info("reloaded", kv...)
}

// handle tracks directories that appear and go, and reports whether ev is a
// change that calls for a reload, with the path to show for it.
func (w *Watcher) handle(ev fsnotify.Event) (string, bool) {
	if ev.Op == fsnotify.Chmod || ev.Name == "" {
		return "", false // attributes only: touch, chmod, a backup tool
	}
	if w.files[ev.Name] {
		return filepath.Base(ev.Name), true
	}
	r := w.dirs[filepath.Dir(ev.Name)]
	if r == nil {
		r = w.dirs[ev.Name] // the watched directory itself went
	}
	if r == nil {
		return "", false
	}
	_, wasDir := w.dirs[ev.Name]
	isDir := wasDir
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			isDir = true
		}
	}
	if w.ig.ignored(r.path, ev.Name, isDir) {
		return "", false
	}
	if wasDir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		w.drop(ev.Name)
	}
	if isDir && ev.Has(fsnotify.Create) {
		if err := w.addTree(r, ev.Name); err != nil {
			w.log.Error("a new directory is not watched: changes in it do not reload", "dir", ev.Name, "error", err)
		}
	}
	shown, err := filepath.Rel(r.path, ev.Name)
	if err != nil || shown == "." {
		shown = ev.Name
	}
	return shown, true
}
