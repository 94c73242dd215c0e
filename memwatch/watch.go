package memwatch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// unlimited is the smallest value read as "no limit": cgroup v1 reports
// none as 2^63-1 rounded down to a page.
const unlimited = 1 << 62

// Watch reads one memory cgroup and alarms when its usage crosses a level
// or it comes under memory pressure. Create it with Open, run its loop
// with Run, end it with Close. Its methods are safe for concurrent use.
type Watch struct {
	dir     string
	version int
	log     hclog.Logger
	alarms  chan struct{} // holds one alarm while unread
	n       *notifier     // nil where the cgroup cannot tell
	closing chan struct{} // closed by Close

	registered atomic.Int64 // registrations carried out, for tests

	mu      sync.Mutex // protects want, asked, running and closed
	want    *request   // levels the loop has yet to register
	asked   []uint64   // the levels last asked for
	running bool
	closed  bool
}

// request is a set of levels to register, with the charged memory they
// were computed from.
type request struct {
	base   uint64
	levels []uint64
}

// Open opens the memory cgroup in dir (a cgroup filesystem directory of
// version 1 or 2) and prepares its notifications. It fails only when the
// cgroup's usage cannot be read; when notifications are refused, the Watch
// reads usage and Notifies returns "".
func Open(dir string, version int, log hclog.Logger) (*Watch, error) {
	if version != 1 && version != 2 {
		return nil, fmt.Errorf("memory cgroup %s: unknown version %d", dir, version)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	w := &Watch{dir: dir, version: version, log: log, alarms: make(chan struct{}, 1), closing: make(chan struct{})}
	if _, _, _, err := w.Usage(); err != nil {
		return nil, err
	}
	n, err := openNotifier(dir, version)
	if err != nil {
		log.Warn("memory cgroup: no notifications, the guard samples only", "cgroup", dir, "error", err)
	}
	w.n = n
	return w, nil
}

// Dir is the cgroup's directory.
func (w *Watch) Dir() string { return w.dir }

// Notifies says what wakes the Watch: "v1 usage thresholds and memory
// pressure", "v2 memory.events and memory.pressure", ...; "" when nothing
// does and Alarms never fires.
func (w *Watch) Notifies() string {
	if w.n == nil {
		return ""
	}
	return w.n.what
}

// Thresholds reports whether SetLevels is carried out: cgroup v1 with
// notifications.
func (w *Watch) Thresholds() bool { return w.n != nil && w.n.thresholds }

// Alarms receives after the charged memory crossed a level set with
// SetLevels, or the cgroup came under memory pressure. Alarms that come
// while one is unread make one.
func (w *Watch) Alarms() <-chan struct{} { return w.alarms }

// SetLevels asks to be alarmed when the charged memory (page cache
// included, as Usage's charged) crosses any of levels, either way, instead
// of the levels asked before. base is the charged memory the levels were
// computed from: a level crossed since then, before the kernel has it,
// alarms at once. It returns at once; Run's loop registers the levels,
// which costs the kernel tens of milliseconds. Asking for the levels asked
// last time does nothing. It does nothing where Thresholds is false.
func (w *Watch) SetLevels(base uint64, levels []uint64) {
	if !w.Thresholds() {
		return
	}
	levels = slices.Clone(levels)
	slices.Sort(levels)
	levels = slices.Compact(levels)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || slices.Equal(levels, w.asked) {
		return
	}
	w.asked = levels
	w.want = &request{base: base, levels: levels}
	w.n.wakeUp()
}

// take returns the levels waiting to be registered, if any.
func (w *Watch) take() *request {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.want
	w.want = nil
	return r
}

// alarm tells the reader of Alarms, unless an alarm waits already.
func (w *Watch) alarm() {
	select {
	case w.alarms <- struct{}{}:
	default:
	}
}

// Run alarms on the cgroup's notifications until Close, and returns nil
// then. Where the cgroup cannot notify, it only waits for Close. If
// waiting for notifications fails, it logs why and stops alarming.
func (w *Watch) Run() error {
	w.mu.Lock()
	if w.closed || w.n == nil {
		w.mu.Unlock()
		<-w.closing
		return nil
	}
	w.running = true
	w.mu.Unlock()
	defer w.n.close()
	if err := w.loop(); err != nil {
		w.log.Error("memory cgroup: notifications failed, the guard samples only", "cgroup", w.dir, "error", err)
		<-w.closing
	}
	return nil
}

// Close ends Run, and the notifications with it. It may be called more
// than once, and without Run.
func (w *Watch) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	close(w.closing)
	if w.n == nil {
		return
	}
	if w.running {
		w.n.wakeUp()
		return
	}
	w.n.close()
}

func (w *Watch) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// files names the cgroup's control files of the Watch's version.
type files struct{ usage, limit, stat string }

func (w *Watch) files() files {
	if w.version == 2 {
		return files{usage: "memory.current", limit: "memory.max", stat: "memory.stat"}
	}
	return files{usage: "memory.usage_in_bytes", limit: "memory.limit_in_bytes", stat: "memory.stat"}
}

// Usage returns the memory the cgroup is charged for now, page cache
// included; the part of it the kernel cannot reclaim without killing
// (anonymous and shared memory, and locked pages: the LRU lists
// active_anon, inactive_anon and unevictable, which overlap no other);
// and its limit, 0 when none.
func (w *Watch) Usage() (charged, held, limit uint64, err error) {
	f := w.files()
	if charged, err = w.number(f.usage); err != nil {
		return 0, 0, 0, err
	}
	data, err := os.ReadFile(filepath.Join(w.dir, f.stat))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("memory cgroup: %w", err)
	}
	if held, err = parseHeld(string(data), w.version); err != nil {
		return 0, 0, 0, fmt.Errorf("memory cgroup %s: %w", filepath.Join(w.dir, f.stat), err)
	}
	s, err := os.ReadFile(filepath.Join(w.dir, f.limit))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("memory cgroup: %w", err)
	}
	if limit, err = parseLimit(string(s)); err != nil {
		return 0, 0, 0, fmt.Errorf("memory cgroup %s: %w", filepath.Join(w.dir, f.limit), err)
	}
	return charged, held, limit, nil
}

func (w *Watch) number(name string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		return 0, fmt.Errorf("memory cgroup: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory cgroup %s: %w", filepath.Join(w.dir, name), err)
	}
	return n, nil
}

// parseLimit parses memory.max or memory.limit_in_bytes: 0 for no limit.
func parseLimit(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: not a byte count", s)
	}
	if n >= unlimited {
		return 0, nil
	}
	return n, nil
}

// parseHeld adds up the LRU lists of memory.stat that hold memory the
// kernel cannot reclaim without swap: active_anon, inactive_anon and
// unevictable (v1: their total_ forms, which count the cgroups below).
func parseHeld(stat string, version int) (uint64, error) {
	prefix := ""
	if version == 1 {
		prefix = "total_"
	}
	names := []string{prefix + "active_anon", prefix + "inactive_anon", prefix + "unevictable"}
	values := map[string]uint64{}
	for _, line := range strings.Split(stat, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: not a byte count", name, value)
		}
		values[name] = n
	}
	for _, name := range names[:2] {
		if _, ok := values[name]; !ok {
			return 0, fmt.Errorf("no %s", name)
		}
	}
	var sum uint64
	for _, n := range values {
		sum += n
	}
	return sum, nil
}
