package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/percore/percore/control"
)

// runControl is "percore reload" and "percore scale N|+1|-1": it sends the
// command to the running percore over its control socket.
func runControl(verb string, args, environ []string, stdout, stderr io.Writer) int {
	path := envMap(environ)["PERCORE_CONTROL"]
	if path == "" {
		path = control.DefaultPath()
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		name, value, has := strings.Cut(args[i], "=")
		if name != "--control" {
			rest = append(rest, args[i])
			continue
		}
		if !has {
			if i+1 >= len(args) {
				fmt.Fprintln(stderr, "percore: flag --control needs a value (PATH)")
				return exitUsage
			}
			i++
			value = args[i]
		}
		path = value
	}
	command := verb
	switch {
	case verb == "reload" && len(rest) == 0:
	case verb == "scale" && len(rest) == 1:
		if _, _, _, err := control.ParseScale(rest[0]); err != nil {
			fmt.Fprintf(stderr, "percore: %v\n", err)
			return exitUsage
		}
		command += " " + rest[0]
	default:
		fmt.Fprintf(stderr, "percore: usage: percore reload | percore scale N|+1|-1 [--control PATH]\n")
		return exitUsage
	}
	reply, err := control.Send(path, command)
	if err != nil {
		fmt.Fprintf(stderr, "percore %s: %v\n", verb, err)
		return exitError
	}
	fmt.Fprintln(stdout, reply)
	return exitOK
}
