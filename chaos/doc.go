//go:build chaos

// Package chaos is percore's chaos and abuse suite: it runs the real binary
// with real node workers under a steady client load, breaks things (kills
// workers, reloads, stops, leaks, blocks, floods, fills memory cgroups,
// abuses the public port; kills, reloads, hangs and scales in direct mode)
// and checks percore's promises with figures. Each test adds a row to the
// table printed at the end.
//
// It is not part of the normal test run: every file needs the chaos build
// tag. From the repository root:
//
//	go test -tags chaos ./chaos/ -v -count=1 -timeout 10m         # full: about 4 minutes on 2 CPUs
//	go test -tags chaos ./chaos/ -v -count=1 -short -timeout 5m   # short, for CI: about 2¼ minutes
//
// All traffic goes to 127.0.0.1. Every process the suite starts is stopped
// before it ends.
package chaos
