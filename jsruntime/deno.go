package jsruntime

import (
	"fmt"
	"slices"
	"strings"
)

// denoV8FlagsVar is the environment variable deno reads V8 flags from, as a
// comma-separated list. Flags given with --v8-flags come after it.
const denoV8FlagsVar = "DENO_V8_FLAGS"

// denoLoopback is the address deno serve is told to bind.
const denoLoopback = "127.0.0.1"

// Deno is Deno. Its V8 heap has a hard cap: --max-old-space-size and
// --max-semi-space-size go into --v8-flags right after the subcommand when
// argv runs deno run, serve or eval itself, otherwise into DENO_V8_FLAGS
// (deno task, sh -c). deno serve, which does not read PORT, is also given
// --port and --host.
func Deno() Runtime {
	return Runtime{
		Name:        "deno",
		Binaries:    []string{"deno"},
		Memory:      HeapCap,
		SemiSpace:   true,
		HeapSetting: "--" + heapFlagName,
		Prepare: func(w *Worker, o Options, l Launch) (Applied, error) {
			return prepareDeno(w, o, l), nil
		},
		// Deno.serve and node:http serve the worker's port; the preload
		// wraps both (deno run only).
		ProxyPreload: serveProxy,
		// Deno's node:net and node:http serve an inherited socket with
		// listen({fd}), as Node's do, so node's preload serves deno run's
		// apps too; it refuses Deno.serve and Deno.listen on PORT, which
		// take no descriptor.
		DirectPreload:   nodeDirect,
		NoDirectCommand: denoNoDirect,
		Script:          denoScript,
	}
}

// denoNoDirect says why a deno command, args after the binary, cannot run
// in --mode direct: deno serve serves with Deno.serve, and a command other
// than deno run is given no preload.
func denoNoDirect(args []string) string {
	switch cmd := parseDenoCommand(append([]string{"deno"}, args...), 0); cmd.sub {
	case "serve":
		return "deno serve serves with Deno.serve, which takes no descriptor and so cannot serve the public " +
			"socket percore keeps for each worker; run the app with deno run and serve PORT with node:http " +
			"(or node:net), or use --mode proxy"
	case "run":
		return ""
	default:
		return "percore loads its --mode direct preload into deno run only, not deno " + cmd.sub +
			"; run the app with deno run, or use --mode proxy"
	}
}

// denoScript returns the script of deno run or deno serve.
func denoScript(args []string) string {
	cmd := parseDenoCommand(append([]string{"deno"}, args...), 0)
	if (cmd.sub != "run" && cmd.sub != "serve") || cmd.scriptAt >= len(cmd.words) {
		return ""
	}
	return cmd.words[cmd.scriptAt]
}

// prepareDeno puts the heap limit on a deno command line, right after the
// subcommand for deno run, serve and eval run directly, otherwise into
// DENO_V8_FLAGS; and gives deno serve its port and host.
func prepareDeno(w *Worker, o Options, l Launch) Applied {
	var cmd denoCommand
	if l.Binary() {
		cmd = parseDenoCommand(l.Words, l.At)
	}
	envFlags, _ := lookupVar(*w, denoV8FlagsVar)
	a := Applied{Warning: cmd.warning(o.Port, l.Direct())}
	inserts, newEnvFlags := cmd.placeHeap(&a, w.Argv, envFlags, o, l.Direct())
	if l.Direct() && cmd.sub == "serve" {
		inserts = append(inserts, cmd.listenFlags(&a, o.Port)...)
	}
	if l.Direct() && cmd.sub == "run" && o.Preload != "" {
		inserts = append(inserts, "--preload="+o.Preload)
	}
	if len(inserts) > 0 {
		w.Argv = slices.Insert(w.Argv, cmd.insertAt, inserts...)
	}
	if newEnvFlags != "" {
		setVar(w, denoV8FlagsVar, newEnvFlags)
	}
	return a
}

// placeHeap decides where the heap limit of o.HeapMB MiB (and the
// semi-space size of o.SemiSpaceMB) goes and records it in a. It edits a
// --v8-flags option already in argv in place, and returns the options to
// insert after the subcommand or the new DENO_V8_FLAGS value. A limit the
// user set (argv wins over DENO_V8_FLAGS, as deno reads them in that order)
// is kept, and so is a semi-space size of the user's.
func (c denoCommand) placeHeap(a *Applied, argv []string, envFlags string, o Options, direct bool) (inserts []string, newEnvFlags string) {
	envList := strings.Split(envFlags, ",")
	fromArgv := c.userHeap()
	fromEnv := scanHeapFlags(envList, false)
	if scanV8Flags(envList, semiFlagName, false).found || scanV8Flags(c.v8FlagLists(), semiFlagName, false).found {
		o.SemiSpaceMB = 0
	}
	mb, flags := o.HeapMB, strings.Join(heapFlags(o), ",")
	switch {
	case fromArgv.found:
		a.UserHeapMB, a.UserHeapAt = fromArgv.mb, "argv"
	case fromEnv.found:
		a.UserHeapMB, a.UserHeapAt = fromEnv.mb, denoV8FlagsVar
	case mb == 0:
		// No limit to pass.
	case direct && c.takesV8Flags():
		option, inserted := c.addV8Flag(argv, flags)
		a.HeapFlag = option + " (argv)"
		if inserted {
			inserts = append(inserts, option)
		}
	default:
		newEnvFlags = appendV8Flag(envFlags, flags)
		a.HeapFlag = flags + " (" + denoV8FlagsVar + ")"
	}
	return inserts, newEnvFlags
}

// listenFlags returns the options that make deno serve listen on port on
// the loopback address, leaving out those the user gave, and records them
// in a.
func (c denoCommand) listenFlags(a *Applied, port int) []string {
	var flags []string
	if port > 0 && !c.hasOption("--port") {
		a.PortFlag = fmt.Sprintf("--port=%d", port)
		flags = append(flags, a.PortFlag)
	}
	if !c.hasOption("--host") {
		a.HostFlag = "--host=" + denoLoopback
		flags = append(flags, a.HostFlag)
	}
	return flags
}

// appendV8Flag appends flag to a comma-separated list of V8 flags, keeping
// the rest of the list as it is.
func appendV8Flag(list, flag string) string {
	switch {
	case strings.Trim(list, " ") == "":
		return flag
	case strings.HasSuffix(list, ","):
		return list + flag
	}
	return list + "," + flag
}

// denoCommand is a deno command line, read far enough to place flags.
type denoCommand struct {
	words []string
	// sub is the subcommand: "run", "serve", "task" and so on; "run" when
	// deno is given a script directly, "repl" when it is given none. It is
	// "" when there is no deno command line.
	sub string
	// optionsAt and scriptAt delimit deno's options: from the word after the
	// deno binary up to the script (or task name), len(words) when none.
	optionsAt, scriptAt int
	// insertAt is where flags for the subcommand go: right after it.
	insertAt int
}

// parseDenoCommand reads the deno command whose binary is words[at].
func parseDenoCommand(words []string, at int) denoCommand {
	cmd := denoCommand{words: words, sub: "run", optionsAt: at + 1, insertAt: at + 1}
	i := denoPositional(words, at+1)
	switch {
	case i == len(words):
		cmd.sub = "repl"
	case denoSubcommand(words[i]):
		cmd.sub, cmd.insertAt = words[i], i+1
		i = denoPositional(words, i+1)
	}
	cmd.scriptAt = i
	return cmd
}

// options returns deno's options: the words between the binary and the
// script, the subcommand included.
func (c denoCommand) options() []string {
	if c.sub == "" {
		return nil
	}
	return c.words[c.optionsAt:c.scriptAt]
}

// hasOption reports whether the option name is given, as "name" or
// "name=value".
func (c denoCommand) hasOption(name string) bool {
	for _, option := range c.options() {
		if option == name || strings.HasPrefix(option, name+"=") {
			return true
		}
	}
	return false
}

// takesV8Flags reports whether the subcommand accepts --v8-flags for the
// program it runs.
func (c denoCommand) takesV8Flags() bool {
	switch c.sub {
	case "run", "serve", "eval":
		return true
	}
	return false
}

// v8FlagLists returns the values of the --v8-flags options, split at commas.
func (c denoCommand) v8FlagLists() []string {
	var flags []string
	for _, option := range c.options() {
		if list, ok := strings.CutPrefix(option, "--v8-flags="); ok {
			flags = append(flags, strings.Split(list, ",")...)
		}
	}
	return flags
}

// userHeap returns the heap limit that the user's --v8-flags set.
func (c denoCommand) userHeap() heapSetting {
	return scanHeapFlags(c.v8FlagLists(), false)
}

// addV8Flag puts flag into the user's last --v8-flags option in argv, or,
// when there is none, returns a --v8-flags option to insert (inserted true).
// It returns the option as deno will read it.
func (c denoCommand) addV8Flag(argv []string, flag string) (option string, inserted bool) {
	for i := c.scriptAt - 1; i >= c.optionsAt; i-- {
		if list, ok := strings.CutPrefix(argv[i], "--v8-flags="); ok {
			argv[i] = "--v8-flags=" + appendV8Flag(list, flag)
			return argv[i], false
		}
	}
	return "--v8-flags=" + flag, true
}

// warning says what in the command keeps a worker from working under
// percore, or "" when nothing does. direct is false when deno runs inside
// a shell command that percore cannot add flags to.
func (c denoCommand) warning(port int, direct bool) string {
	var warnings []string
	switch {
	case c.sub == "run" && !c.mayReadEnv("PORT"):
		warnings = append(warnings, "deno run without --allow-env: the app cannot read PORT; pass --allow-env=PORT or use deno serve")
	case c.sub == "serve" && c.hasOption("--port"):
		warnings = append(warnings, "deno serve is given its own --port: every worker would listen on that same port; drop it so that percore can give each worker one")
	case c.sub == "serve" && !direct && port > 0:
		warnings = append(warnings, "deno serve inside a shell command gets no --port from percore and listens on its default port 8000; run deno serve directly")
	}
	if c.sub == "serve" && c.hasOption("--parallel") {
		warnings = append(warnings, "deno serve --parallel starts its own workers inside each percore worker; drop --parallel")
	}
	return strings.Join(warnings, "; ")
}

// mayReadEnv reports whether the permission options let the program read
// the environment variable name: -A, --allow-all, -E, --allow-env with no
// list or with a list that names it. A permission set (-P) may grant it too.
func (c denoCommand) mayReadEnv(name string) bool {
	for _, option := range c.options() {
		if list, ok := cutAllowEnv(option); ok {
			if list == "" || envListAllows(list, name) {
				return true
			}
			continue
		}
		if option == "--allow-all" || strings.HasPrefix(option, "--permission-set") ||
			shortFlagsInclude(option, "AEP") {
			return true
		}
	}
	return false
}

// cutAllowEnv returns the list that an --allow-env or -E option gives, ""
// for none. ok is false for other options.
func cutAllowEnv(option string) (list string, ok bool) {
	for _, name := range []string{"--allow-env", "-E"} {
		if option == name {
			return "", true
		}
		if list, ok := strings.CutPrefix(option, name+"="); ok {
			return list, true
		}
	}
	return "", false
}

// envListAllows reports whether a comma-separated --allow-env list lets
// name be read; an entry ending in "*" allows every name with its prefix.
func envListAllows(list, name string) bool {
	for _, entry := range strings.Split(list, ",") {
		prefix, wildcard := strings.CutSuffix(entry, "*")
		if entry == name || (wildcard && strings.HasPrefix(name, prefix)) {
			return true
		}
	}
	return false
}

// shortFlagsInclude reports whether option is a group of one-letter flags
// (like -A or -NE) that includes one of the letters.
func shortFlagsInclude(option, letters string) bool {
	if len(option) < 2 || option[0] != '-' || option[1] == '-' {
		return false
	}
	for _, r := range option[1:] {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return strings.ContainsAny(option[1:], letters)
}

// denoPositional returns the index of the first word of words[from:] that
// is neither an option of deno's nor an option's value.
func denoPositional(words []string, from int) int {
	for i := from; i < len(words); i++ {
		word := words[i]
		switch {
		case !strings.HasPrefix(word, "-") || word == "-":
			return i
		case word == "--lock":
			// --lock takes an optional value that need not follow "=".
			if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				i++
			}
		case denoOptionTakesValue(word):
			i++
		}
	}
	return len(words)
}

// denoOptionTakesValue reports whether a deno option, written without "=",
// takes the next word as its value.
func denoOptionTakesValue(option string) bool {
	switch option {
	case "--port", "--host", "--ext", "--import-map", "-c", "--config",
		"--cert", "--min-dep-age", "--inspect-publish-uid", "--location",
		"--seed", "--preload", "--require", "--conditions",
		"--node-modules-linker", "-L", "--log-level", "--cwd", "-f",
		"--filter", "-j", "--jobs":
		return true
	}
	return false
}

// denoSubcommand reports whether word is one of deno's subcommands rather
// than a script to run.
func denoSubcommand(word string) bool {
	switch word {
	case "run", "watch", "serve", "eval", "fmt", "lint", "test", "upgrade",
		"cache", "check", "info", "doc", "task", "bench", "compile",
		"coverage", "repl", "install", "i", "uninstall", "types",
		"completions", "init", "create", "jupyter", "publish", "add",
		"remove", "outdated", "update", "deploy", "sandbox", "clean", "list",
		"link", "unlink", "approve-scripts", "lsp", "vendor", "bundle",
		"audit", "why", "transpile", "bump-version", "ci", "desktop", "pack",
		"x", "help":
		return true
	}
	return false
}
