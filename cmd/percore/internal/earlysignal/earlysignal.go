// Package earlysignal catches percore's signals from the first moments of
// the process, before package main and most dependencies are initialized.
//
// Until a handler is installed a SIGTERM or SIGHUP takes its default action
// and ends the process without a word (exit 143 or 129); an orchestrator
// that stops a container just after starting it, or a reload sent too early,
// would then kill percore uncleanly. Initializing percore's dependencies
// takes several milliseconds (tens on a busy machine), so a handler installed
// in main comes too late. Go initializes packages in import-path order among
// those whose imports are ready; this package imports only os/signal and
// its dependencies, so its init runs as soon as os/signal's, ahead of the
// heavy packages.
//
// This is the one package with an init side effect and a package-level
// variable: nothing else runs early enough. It is not a signal router;
// percore's run takes the channel and handles what it receives.
package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals are the signals percore handles.
var Signals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
	syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU}

// caught receives Signals from the start of the process.
var caught = make(chan os.Signal, 16)

func init() {
	signal.Notify(caught, Signals...)
}

// Channel returns the channel that has been receiving Signals since the
// process started. The caller owns it and calls Release when done.
func Channel() chan os.Signal { return caught }

// Release stops the catching and gives the signals their default action
// back, for commands that do not handle them (percore status, version, ...)
// and for test binaries.
func Release() { signal.Stop(caught) }
