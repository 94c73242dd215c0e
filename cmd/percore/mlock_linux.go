//go:build linux

package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status CapEff.
const capIPCLock = 14

// lockMemory keeps percore's own pages in memory, best effort. In a memory
// cgroup at its limit the kernel reclaims what it can, and percore's code is
// file-backed, hence reclaimable: every page of it evicted is read back from
// disk the next time percore runs it, and percore then answers seconds late
// while its workers thrash. MCL_ONFAULT locks pages as they are first used,
// so the cost is percore's resident size, not its address space. Future
// mappings (the Go heap as it grows) are locked too only where that can
// never fail: with no RLIMIT_MEMLOCK, or with CAP_IPC_LOCK that percore
// keeps (not when it becomes another user, which drops every capability),
// since a locked mapping over the limit fails, and the Go runtime treats
// that as fatal ("mmap: too much locked memory").
func lockMemory(log hclog.Logger, becomesUser bool) {
	flags := unix.MCL_CURRENT | unix.MCL_ONFAULT
	if mayLockFuture(becomesUser) {
		flags |= unix.MCL_FUTURE
	}
	if err := unix.Mlockall(flags); err != nil {
		log.Debug("cannot lock percore's memory; under memory pressure its pages may be evicted",
			"error", err, "hint", "grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK (ulimit -l)")
		return
	}
	log.Debug("percore's memory is locked", "future", flags&unix.MCL_FUTURE != 0)
}

// mayLockFuture reports whether every future mapping can be locked, now
// and after percore becomes another user when becomesUser is set.
func mayLockFuture(becomesUser bool) bool {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err == nil && rl.Cur == unix.RLIM_INFINITY {
		return true
	}
	if becomesUser {
		return false
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<capIPCLock) != 0
		}
	}
	return false
}
