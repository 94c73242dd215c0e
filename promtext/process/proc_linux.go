package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/percore/percore/promtext"
)

// userHZ is the number of clock ticks a second in /proc times (USER_HZ, 100
// on every Linux architecture Go supports).
const userHZ = 100

// addProc adds the metrics read from /proc.
func addProc(s *promtext.Set, prefix string) error {
	return errors.Join(addStat(s, prefix), addOpenFDs(s, prefix))
}

// addStat adds the CPU time, memory sizes and start time from /proc/self/stat.
func addStat(s *promtext.Set, prefix string) error {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return fmt.Errorf("read process stat: %w", err)
	}
	st, err := parseStat(data)
	if err != nil {
		return fmt.Errorf("parse /proc/self/stat: %w", err)
	}
	s.Counter(prefix+"cpu_seconds_total", helpCPU).Add(float64(st.utime+st.stime) / userHZ)
	s.Gauge(prefix+"virtual_memory_bytes", helpVSize).Add(float64(st.vsize))
	s.Gauge(prefix+"resident_memory_bytes", helpRSS).Add(float64(st.rss * uint64(os.Getpagesize())))
	boot, err := bootTime()
	if err != nil {
		return err
	}
	s.Gauge(prefix+"start_time_seconds", helpStartTime).Add(float64(boot) + float64(st.starttime)/userHZ)
	return nil
}

// stat is what is used of /proc/self/stat.
type stat struct {
	utime, stime uint64 // CPU time in user and kernel mode, in ticks
	starttime    uint64 // start time, in ticks since boot
	vsize        uint64 // virtual memory size, in bytes
	rss          uint64 // resident set size, in pages
}

// parseStat parses the contents of /proc/PID/stat (proc(5)).
func parseStat(data []byte) (stat, error) {
	// The command name, second, is in parentheses and may hold spaces and
	// parentheses itself: the fields that follow start after the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return stat{}, errors.New("no command name")
	}
	fields := bytes.Fields(data[end+1:])
	// fields[0] is field 3 of proc(5), state; rss, field 24, is the last used.
	const first, last = 3, 24
	if len(fields) < last-first+1 {
		return stat{}, fmt.Errorf("%d fields, want at least %d", len(fields)+first-1, last)
	}
	var st stat
	var err error
	for _, f := range []struct {
		field int
		dst   *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		if *f.dst, err = strconv.ParseUint(string(fields[f.field-first]), 10, 64); err != nil {
			return stat{}, fmt.Errorf("field %d: %w", f.field, err)
		}
	}
	return st, nil
}

// bootTime returns the system's boot time in seconds since the epoch, read
// once from /proc/stat.
var bootTime = sync.OnceValues(func() (uint64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read boot time: %w", err)
	}
	t, err := parseBootTime(data)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/stat: %w", err)
	}
	return t, nil
})

// parseBootTime returns the value of the btime line of /proc/stat.
func parseBootTime(data []byte) (uint64, error) {
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			t, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("btime: %w", err)
			}
			return t, nil
		}
	}
	return 0, errors.New("no btime line")
}

// addOpenFDs adds the number of open file descriptors.
func addOpenFDs(s *promtext.Set, prefix string) error {
	n, err := countEntries("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("count open file descriptors: %w", err)
	}
	s.Gauge(prefix+"open_fds", helpOpenFDs).Add(float64(n))
	return nil
}

// countEntries returns the number of entries of directory dir. Counting
// /proc/self/fd includes the descriptor that reads it, as the Prometheus Go
// client's count does.
func countEntries(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(256)
		n += len(names)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
