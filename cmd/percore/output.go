package main

import (
	"os"

	"github.com/percore/percore/supervisor"
	"golang.org/x/term"
)

// outputConfig decides how worker output is written. By default lines pass
// through untouched, so JSON log lines stay valid JSON; on a terminal each
// line gets a coloured "[id] " prefix.
func outputConfig(cfg *config) supervisor.OutputConfig {
	tty := term.IsTerminal(int(os.Stdout.Fd()))
	prefix := cfg.LogPrefix == "on" || (cfg.LogPrefix == "auto" && tty)
	return supervisor.OutputConfig{Prefix: prefix, Colour: prefix && tty}
}
