package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/percore/percore/control"
	"github.com/percore/percore/jsruntime"
)

// cli is what a subcommand runs with.
type cli struct {
	runtimes jsruntime.Registry
	environ  []string
	stdin    *os.File
	stdout   io.Writer
	stderr   io.Writer
}

// subcommand is one of percore's commands besides running the workers. Each
// parses its own flags; -h and --help print its usage and exit 0.
type subcommand interface {
	// Name is the word after percore.
	Name() string
	// Usage is the synopsis, as "percore scale N|+N|-N [--control PATH]".
	Usage() string
	// Summary is one line for percore --help.
	Summary() string
	// Run runs the command with the words after its name and returns the
	// exit code.
	Run(c *cli, args []string) int
}

// subcommands is the one list of percore's subcommands: the dispatch, the
// help and the signal handling of the commands all come from it.
func subcommands() []subcommand {
	return []subcommand{planCommand{}, reloadCommand{}, scaleCommand{}, statusCommand{}, topCommand{}, versionCommand{}}
}

// findSubcommand returns the subcommand named name.
func findSubcommand(name string) (subcommand, bool) {
	for _, s := range subcommands() {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// negativeNumber is an argument such as "-1", which is a value, not a flag.
var negativeNumber = regexp.MustCompile(`^-[0-9]+$`)

// parseSubFlags parses args with fs, flags and positional arguments in any
// order, and returns the positional ones. done is true when the command
// must end with code: after its help (0) or a usage error (2).
func parseSubFlags(c *cli, sub subcommand, fs *flag.FlagSet, args []string) (positional []string, code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for len(args) > 0 {
		if negativeNumber.MatchString(args[0]) {
			positional, args = append(positional, args[0]), args[1:]
			continue
		}
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printSubcommandHelp(c.stdout, sub, fs)
			return nil, exitOK, true
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "percore %s: %v\nusage: %s\n", sub.Name(), err, sub.Usage())
			return nil, exitUsage, true
		}
		args = fs.Args()
		if len(args) > 0 {
			positional, args = append(positional, args[0]), args[1:]
		}
	}
	return positional, 0, false
}

// printSubcommandHelp prints a subcommand's usage and flags.
func printSubcommandHelp(w io.Writer, sub subcommand, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage: %s\n", sub.Summary(), sub.Usage())
	if fs == nil {
		return
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		fmt.Fprintf(w, "  --%s\n      %s", f.Name, f.Usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// printSubcommands lists the subcommands, for percore --help.
func printSubcommands(w io.Writer) {
	for _, s := range subcommands() {
		fmt.Fprintf(w, "  %s\n", s.Usage())
	}
}

// versionCommand is "percore version".
type versionCommand struct{}

func (versionCommand) Name() string    { return "version" }
func (versionCommand) Usage() string   { return "percore version" }
func (versionCommand) Summary() string { return "Prints percore's version." }

func (v versionCommand) Run(c *cli, args []string) int {
	fs := flag.NewFlagSet(v.Name(), flag.ContinueOnError)
	rest, code, done := parseSubFlags(c, v, fs, args)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(c.stderr, "percore version: unexpected argument %q\n", rest[0])
		return exitUsage
	}
	fmt.Fprintf(c.stdout, "percore %s\n", currentVersion())
	return exitOK
}

// reloadCommand is "percore reload".
type reloadCommand struct{}

func (reloadCommand) Name() string { return "reload" }
func (reloadCommand) Usage() string {
	return "percore reload [--port PORT | --listen HOST:PORT | --control PATH]"
}
func (reloadCommand) Summary() string {
	return "Asks a running percore to read its limits again and replace its workers one at a time (like SIGHUP)."
}

func (r reloadCommand) Run(c *cli, args []string) int {
	fs := flag.NewFlagSet(r.Name(), flag.ContinueOnError)
	pick := addInstanceFlags(fs, c.environ, true)
	rest, code, done := parseSubFlags(c, r, fs, args)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(c.stderr, "percore reload: unexpected argument %q\nusage: %s\n", rest[0], r.Usage())
		return exitUsage
	}
	if err := pick.check(); err != nil {
		fmt.Fprintf(c.stderr, "percore reload: %v\nusage: %s\n", err, r.Usage())
		return exitUsage
	}
	return sendControl(c, r.Name(), pick, "reload")
}

// scaleCommand is "percore scale N|+N|-N".
type scaleCommand struct{}

func (scaleCommand) Name() string { return "scale" }
func (scaleCommand) Usage() string {
	return "percore scale N|+N|-N [--port PORT | --listen HOST:PORT | --control PATH]"
}
func (scaleCommand) Summary() string {
	return "Sets a running percore's worker count, or changes it by N; the plan is made again for the new count."
}

func (s scaleCommand) Run(c *cli, args []string) int {
	fs := flag.NewFlagSet(s.Name(), flag.ContinueOnError)
	pick := addInstanceFlags(fs, c.environ, true)
	rest, code, done := parseSubFlags(c, s, fs, args)
	if done {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(c.stderr, "percore scale: want one count, N, +N or -N\nusage: %s\n", s.Usage())
		return exitUsage
	}
	if _, _, _, err := control.ParseScale(rest[0]); err != nil {
		fmt.Fprintf(c.stderr, "percore scale: %v\n", err)
		return exitUsage
	}
	if err := pick.check(); err != nil {
		fmt.Fprintf(c.stderr, "percore scale: %v\nusage: %s\n", err, s.Usage())
		return exitUsage
	}
	return sendControl(c, s.Name(), pick, "scale "+rest[0])
}

// adminFlag is the --admin flag of status and top.
func adminFlag(fs *flag.FlagSet) *string {
	return fs.String("admin", "",
		"the running percore's admin address, HOST:PORT (env PERCORE_ADMIN); by default the one that --port, --listen "+
			"or the only percore running tells over its control socket, else "+defaultAdmin)
}

// statusCommand is "percore status".
type statusCommand struct{}

func (statusCommand) Name() string { return "status" }
func (statusCommand) Usage() string {
	return "percore status [--port PORT | --listen HOST:PORT | --admin HOST:PORT] [--json]"
}
func (statusCommand) Summary() string {
	return "Prints a running percore's workers as a table, read from its /status; lists the percores when several run."
}

func (s statusCommand) Run(c *cli, args []string) int {
	fs := flag.NewFlagSet(s.Name(), flag.ContinueOnError)
	admin := adminFlag(fs)
	pick := addInstanceFlags(fs, c.environ, false)
	raw := fs.Bool("json", false, "print /status as it is, in JSON")
	rest, code, done := parseSubFlags(c, s, fs, args)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(c.stderr, "percore status: unexpected argument %q\nusage: %s\n", rest[0], s.Usage())
		return exitUsage
	}
	chosen, code, ok := pickAdmin(c, s, *admin, pick)
	if !ok {
		return code
	}
	addr, several, err := adminAddr(chosen, pick, c.stderr, s.Name())
	if err != nil {
		fmt.Fprintf(c.stderr, "percore status: %s\n", terminalSafe(err.Error()))
		return exitError
	}
	if several != nil {
		printInstances(c.stdout, several)
		return exitOK
	}
	return runStatus(addr, *raw, c.stdout, c.stderr)
}

// pickAdmin checks the flags that pick the percore of status and top and
// returns --admin, else PERCORE_ADMIN unless --port or --listen is given:
// --admin, --port and --listen exclude each other. On a usage error it
// prints it and returns ok false with the exit code.
func pickAdmin(c *cli, sub subcommand, admin string, pick instanceFlags) (string, int, bool) {
	err := pick.check()
	if err == nil && admin != "" && pick.named() {
		err = errors.New("give one of --admin, --port and --listen")
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "percore %s: %v\nusage: %s\n", sub.Name(), err, sub.Usage())
		return "", exitUsage, false
	}
	if admin == "" && !pick.named() {
		admin = envMap(c.environ)["PERCORE_ADMIN"]
	}
	return admin, 0, true
}

// topCommand is "percore top".
type topCommand struct{}

func (topCommand) Name() string { return "top" }
func (topCommand) Usage() string {
	return "percore top [--port PORT | --listen HOST:PORT | --admin HOST:PORT]"
}
func (topCommand) Summary() string {
	return "Shows a running percore's workers, refreshed every second until q or Ctrl-C."
}

func (t topCommand) Run(c *cli, args []string) int {
	fs := flag.NewFlagSet(t.Name(), flag.ContinueOnError)
	admin := adminFlag(fs)
	pick := addInstanceFlags(fs, c.environ, false)
	rest, code, done := parseSubFlags(c, t, fs, args)
	if done {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(c.stderr, "percore top: unexpected argument %q\nusage: %s\n", rest[0], t.Usage())
		return exitUsage
	}
	chosen, code, ok := pickAdmin(c, t, *admin, pick)
	if !ok {
		return code
	}
	addr, several, err := adminAddr(chosen, pick, c.stderr, t.Name())
	if several != nil {
		err = &severalError{sockets: several}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "percore top: %s\n", safeLines(err.Error()))
		if several != nil {
			return exitUsage
		}
		return exitError
	}
	return runTop(addr, c.stdin, c.stdout, c.stderr)
}

// planCommand is "percore plan". Besides --cpus, --memory and --swap it
// takes percore's own flags, which change the plan as they would a run.
type planCommand struct{}

func (planCommand) Name() string { return "plan" }
func (planCommand) Usage() string {
	return "percore plan [--cpus N] [--memory SIZE] [--swap SIZE] [flags] [-- COMMAND [ARGS...]]"
}
func (planCommand) Summary() string {
	return "Prints what percore would run on this machine, or on the one --cpus, --memory and --swap describe."
}

func (p planCommand) Run(c *cli, args []string) int {
	return runPlan(c.runtimes, args, c.environ, c.stdout, c.stderr, func(w io.Writer) {
		printSubcommandHelp(w, p, nil)
		fmt.Fprintln(w, strings.TrimSpace(`
Flags: --cpus N, --memory SIZE (512M, 1G), --swap SIZE, and percore's own flags
(percore --help), which change the plan as they would a run.`))
	})
}
