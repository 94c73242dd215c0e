// Package memwatch reads a memory cgroup's usage and tells at once when it
// moves, so that a memory guard need not wait for its next sample.
//
// On cgroup v1 it registers thresholds on memory.usage_in_bytes (an eventfd
// written to cgroup.event_control): the kernel checks them every few hundred
// KiB charged or uncharged and signals the eventfd when the usage crosses one,
// either way. It also asks memory.pressure_level for its "medium" level, so
// that reclaim under way wakes it when the page cache keeps the usage at the
// limit and thresholds stay quiet. cgroup v2 has no usage thresholds: there
// it wakes when memory.events changes (the cgroup hit memory.high or
// memory.max, or an OOM happened) and on a PSI trigger on memory.pressure
// (tasks stalled on memory). Registering needs write access to the cgroup's
// files (root, and a cgroup filesystem mounted read-write); where that is
// refused, a Watch still reads the usage but never alarms, and says so.
//
// It is not a guard: it knows nothing of processes, and what to do about a
// crossing is its caller's business.
package memwatch
