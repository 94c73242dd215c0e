//go:build linux

package main

import (
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// lockMemory keeps percore's own pages in memory, best effort. In a memory
// cgroup at its limit the kernel reclaims what it can, and percore's code is
// file-backed, hence reclaimable: every page of it evicted is read back from
// disk the next time percore runs it, and percore then answers seconds late
// while its workers thrash. MCL_ONFAULT locks pages as they are first used,
// so the cost is percore's resident size, not its address space.
//
// Only the mappings of now are locked (the binary's code and data, the
// first heap), never future ones (MCL_FUTURE): a future mapping over
// RLIMIT_MEMLOCK fails, which the Go runtime treats as fatal, and a percore
// that drops to --user loses the CAP_IPC_LOCK that exempts it from the limit
// while it still grows its heap and starts threads.
func lockMemory(log hclog.Logger) {
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_ONFAULT); err != nil {
		log.Debug("cannot lock percore's memory; under memory pressure its pages may be evicted",
			"error", err, "hint", "grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK (ulimit -l)")
		return
	}
	log.Debug("percore's memory is locked")
}
