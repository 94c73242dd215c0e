package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// DefaultDebounce is how long the Watcher waits after a change for more
// before it reloads: long enough to fold an editor's write-and-rename or a
// git checkout into one reload, short enough not to be noticed.
const DefaultDebounce = 300 * time.Millisecond

// maxDelay bounds how long a stream of changes may delay its reload.
const maxDelay = 5 * time.Second

// Result is how a reload went.
type Result struct {
	Failed   bool          // the new code did not start, or died on probation; the old workers serve on
	Replaced int           // workers replaced
	Took     time.Duration // how long the reload ran
}

// Reloader runs a rolling reload and returns when it has ended. It returns
// an error, without a Result, when ctx ends or the app stops first.
type Reloader interface {
	Reload(ctx context.Context) (Result, error)
}

// ReloaderFunc adapts a function to Reloader.
type ReloaderFunc func(ctx context.Context) (Result, error)

// Reload implements Reloader.
func (f ReloaderFunc) Reload(ctx context.Context) (Result, error) { return f(ctx) }

// Config configures a Watcher.
type Config struct {
	// Paths are the directories (watched with everything below them) and
	// files to watch. Required.
	Paths []string
	// Ignore are more patterns to ignore, beside DefaultIgnore: a pattern
	// without a slash matches a file or directory name anywhere ("*.log"), one
	// with a slash the path from a watched directory ("src/generated").
	Ignore []string
	// Keep are directories never ignored, such as the one holding the
	// app's script when it lies in dist/.
	Keep []string
	// Debounce is how long to wait for more changes (default DefaultDebounce).
	Debounce time.Duration
	// Reloader reloads the app. Required.
	Reloader Reloader
	// Logger is where the watcher says what it watches and how each reload
	// went (default: a null logger).
	Logger hclog.Logger
}

// root is one of the watched directories given in Config.Paths.
type root struct {
	path string
}

// Watcher watches the app's files and reloads on changes. Create it with
// New, run it with Run, end it with Stop.
type Watcher struct {
	cfg Config
	log hclog.Logger
	fs  *fsnotify.Watcher
	ig  *ignorer

	// Owned by New, then by Run's goroutine.
	dirs  map[string]*root // watched directories and the root they are under
	files map[string]bool  // file roots
	extra map[string]bool  // parents of file roots, watched for them only

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
}

// New watches cfg.Paths, or fails: a path that does not exist, a bad ignore
// pattern, or the system's limit on watches (a *LimitError, which says how
// to raise it). It logs how many directories it watches.
func New(cfg Config) (*Watcher, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if len(cfg.Paths) == 0 || cfg.Reloader == nil {
		return nil, errors.New("watch: paths and a reloader are required")
	}
	ig, err := newIgnorer(cfg.Ignore, cfg.Keep)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		if le := limitError(err, 0); le != nil {
			return nil, le
		}
		return nil, fmt.Errorf("watch: start the file watcher: %w", err)
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger, fs: fw, ig: ig, stop: make(chan struct{}),
		dirs: map[string]*root{}, files: map[string]bool{}, extra: map[string]bool{}}
	if err := w.addRoots(); err != nil {
		fw.Close()
		return nil, err
	}
	w.log.Info("watching for changes: a change reloads the app", "dirs", len(w.dirs)+len(w.extra),
		"paths", cfg.Paths, "debounce", cfg.Debounce)
	return w, nil
}

// addRoots watches every configured path.
func (w *Watcher) addRoots() error {
	for _, p := range w.cfg.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if fi.IsDir() {
			if err := w.addTree(&root{path: abs}, abs); err != nil {
				return err
			}
			continue
		}
		w.files[abs] = true
		dir := filepath.Dir(abs)
		if w.dirs[dir] != nil || w.extra[dir] {
			continue
		}
		if err := w.fs.Add(dir); err != nil {
			return w.addError(dir, err)
		}
		w.extra[dir] = true
	}
	return nil
}

// addTree watches dir and the directories below it that are not ignored.
// A directory that vanishes meanwhile is skipped; the watch limit is an
// error.
func (w *Watcher) addTree(r *root, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("watch %s: %w", p, err)
			}
			return nil // gone, or unreadable below the root
		}
		if !d.IsDir() {
			return nil
		}
		if p != r.path && w.ig.ignored(r.path, p, true) {
			return filepath.SkipDir
		}
		if w.dirs[p] != nil {
			return nil
		}
		if err := w.fs.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return w.addError(p, err)
		}
		delete(w.extra, p)
		w.dirs[p] = r
		w.log.Trace("watching directory", "dir", p)
		return nil
	})
}

// addError explains an error adding a watch on dir.
func (w *Watcher) addError(dir string, err error) error {
	if le := limitError(err, len(w.dirs)+len(w.extra)); le != nil {
		return le
	}
	return fmt.Errorf("watch %s: %w", dir, err)
}

// drop stops watching dir and every watched directory below it.
func (w *Watcher) drop(dir string) {
	prefix := dir + string(filepath.Separator)
	for d := range w.dirs {
		if d == dir || (len(d) > len(prefix) && d[:len(prefix)] == prefix) {
			// The kernel may have dropped the watch already with the
			// directory; the error then says so and is of no interest.
			_ = w.fs.Remove(d)
			delete(w.dirs, d)
			w.log.Trace("stopped watching directory", "dir", d)
		}
	}
}

// Watched returns the directories watched now, sorted.
func (w *Watcher) Watched() []string {
	list := w.fs.WatchList()
	sort.Strings(list)
	return list
}

// Stop ends Run. It may be called more than once, and before Run.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
}

// Close releases the watches when Run was never called.
func (w *Watcher) Close() error {
	return w.fs.Close()
}
