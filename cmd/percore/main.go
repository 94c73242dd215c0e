// Command percore runs a JavaScript server (Node, Deno or Bun) as one worker
// process per usable CPU behind a load-balancing proxy, and supervises them.
//
//	percore [flags] [--] COMMAND [ARGS...]
//
// Run "percore --help" for the flags.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
