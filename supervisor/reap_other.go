//go:build !linux

package supervisor

import (
	"os/exec"

	"github.com/hashicorp/go-hclog"
)

// Reaper is the Launcher for the percore binary. Outside Linux there is no
// child subreaper: it waits for each worker in a goroutine, like Waiter, and
// orphans of wrapper commands go to the system's init.
type Reaper struct {
	w *Waiter
}

// NewReaper returns a Reaper.
func NewReaper(log hclog.Logger) (*Reaper, error) {
	log.Debug("no child subreaper on this system: orphans of workers are reaped by init")
	return &Reaper{w: NewWaiter()}, nil
}

// Start implements Launcher.
func (r *Reaper) Start(cmd *exec.Cmd) (int, <-chan Exit, error) { return r.w.Start(cmd) }

// Close stops the spawning thread.
func (r *Reaper) Close() { r.w.Close() }
