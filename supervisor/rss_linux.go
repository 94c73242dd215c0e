//go:build linux

package supervisor

import (
	"bytes"
	"os"
	"strconv"
)

// groupRSS adds up the resident memory of the processes in process group
// pgid, from /proc/PID/statm. Pages shared between them count once per
// process, so the figure errs high, never low.
func groupRSS(pgid int) (uint64, bool) {
	total, found := uint64(0), false
	page := uint64(os.Getpagesize())
	add := func(pid int) {
		if pages, ok := residentPages(pid); ok {
			total += pages * page
			found = true
		}
	}
	add(pgid)
	for _, pid := range groupMembers(pgid) {
		if pid != pgid {
			add(pid)
		}
	}
	return total, found
}

func residentPages(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(f[1]), 10, 64)
	return n, err == nil
}
