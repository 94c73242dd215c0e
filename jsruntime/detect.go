package jsruntime

import (
	"slices"
	"strings"
)

// maxNesting bounds how deep Detect looks through wrappers that contain
// other commands (env, sh -c, npx -c).
const maxNesting = 8

// launch says where a command line starts its JavaScript runtime.
type launch struct {
	rt      Runtime
	found   bool   // rt is one of the registry's runtimes
	wrapper string // the wrapper that starts rt, such as npm or npx; "" when none does
	Launch
}

// Detect tells which of the runtimes of Default a command line runs; see
// Registry.Detect.
func Detect(argv []string) Runtime {
	return Default().Detect(argv)
}

// Detect tells which JavaScript runtime a command line runs; Other when it
// runs none of r's. It knows the runtime binaries by their base name, also
// with a path or a version (node, /usr/local/bin/node, nodejs, node20, deno,
// bun), and looks through the wrappers that start them: env(1) with its
// options and assignments, sh -c and bash -c scripts (the first command of
// the script that runs a runtime), a runtime's own wrappers (npm, pnpm,
// yarn, corepack, tsx, ts-node, nodemon for node; bunx for bun), the
// binaries of npm packages (a path through node_modules/.bin), and npx and
// pnpx, which run the runtime named by their package, else the runtime that
// runs npm packages (node).
func (r Registry) Detect(argv []string) Runtime {
	if l := r.locate(argv); l.found {
		return l.rt
	}
	return Other()
}

// locate finds where argv starts its runtime.
func (r Registry) locate(argv []string) launch {
	return r.locateFrom(argv, 0, true, 0)
}

// ChildWrapper returns the wrapper through which argv starts its runtime
// as a child process of the wrapper's own, such as npm, pnpm, tsx or npx:
// that child inherits standard input, output and error only, so an
// inherited socket such as --mode direct's descriptor 3 never reaches the
// app. It returns "" when argv runs the runtime in its own process: its
// binary, also through env(1), a shell or an npm package's binary, or a
// wrapper of the runtime's InProcess.
func (r Registry) ChildWrapper(argv []string) string {
	l := r.locate(argv)
	if !l.found || slices.Contains(l.rt.InProcess, l.wrapper) {
		return ""
	}
	return l.wrapper
}

// NoDirectCommand returns why argv, whose runtime has a DirectPreload,
// cannot run in --mode direct as written (the runtime's NoDirectCommand,
// such as deno serve's), or "" when nothing is known against it.
func (r Registry) NoDirectCommand(argv []string) string {
	l := r.locate(argv)
	if !l.found || !l.Binary() || l.rt.NoDirectCommand == nil {
		return ""
	}
	return l.rt.NoDirectCommand(l.Words[l.At+1:])
}

// locateFrom finds the runtime of the command that starts at words[at].
func (r Registry) locateFrom(words []string, at int, inArgv bool, depth int) launch {
	none := launch{Launch: Launch{Words: words, At: -1, InArgv: inArgv}}
	if at >= len(words) || depth > maxNesting {
		return none
	}
	name := commandName(words[at])
	if rt, ok := r.binary(name); ok {
		return launch{rt: rt, found: true, Launch: Launch{Words: words, At: at, InArgv: inArgv}}
	}
	wrapped, isWrapper := r.wrapper(name)
	wrapper := name
	if !isWrapper && isPackageBin(words[at]) {
		wrapped, isWrapper = r.packages()
		wrapper = "" // its shebang runs the runtime in the same process
	}
	switch {
	case name == "env":
		return r.locateAfterEnv(words, at, inArgv, depth)
	case isShell(name):
		if script, ok := shellScript(words, at); ok {
			return r.locateInScript(script, depth+1)
		}
	case name == "busybox":
		return r.locateFrom(words, at+1, inArgv, depth+1)
	case packageRunner(name):
		l := r.locateExecTarget(words, at+1, depth)
		l.wrapper = name
		return l
	case isWrapper:
		if sub, i := firstPositional(words, at+1); isExecSubcommand(name, sub) {
			l := r.locateExecTarget(words, i+1, depth)
			l.wrapper = name
			return l
		}
		return launch{rt: wrapped, found: true, wrapper: wrapper, Launch: Launch{Words: words, At: -1, InArgv: inArgv}}
	}
	return none
}

// locateAfterEnv finds the runtime of the command that env(1) at words[at]
// runs.
func (r Registry) locateAfterEnv(words []string, at int, inArgv bool, depth int) launch {
	e := parseEnvCommand(words, at)
	if e.hasSplit {
		split := append(shellWords(e.split), words[e.cmdAt:]...)
		return r.locateFrom(split, 0, false, depth+1)
	}
	return r.locateFrom(words, e.cmdAt, inArgv, depth+1)
}

// locateInScript finds the runtime that a shell script starts: the first
// of its commands that runs one.
func (r Registry) locateInScript(script string, depth int) launch {
	for _, command := range shellCommands(script) {
		command = skipCommandPrefix(command)
		if l := r.locateFrom(command, 0, false, depth); l.found {
			return l
		}
	}
	return launch{Launch: Launch{At: -1}}
}

// skipCommandPrefix drops the words in front of a shell command's name:
// variable assignments and exec.
func skipCommandPrefix(command []string) []string {
	for len(command) > 0 {
		name, _, isAssignment := strings.Cut(command[0], "=")
		if command[0] != "exec" && !(isAssignment && validVarName(name)) {
			break
		}
		command = command[1:]
	}
	return command
}

// isExecSubcommand reports whether sub is the subcommand with which the
// package manager name runs a package's binary (npm exec, pnpm dlx).
func isExecSubcommand(name, sub string) bool {
	switch name {
	case "npm":
		return sub == "exec" || sub == "x"
	case "pnpm", "yarn":
		return sub == "exec" || sub == "dlx"
	}
	return false
}

// locateExecTarget tells the runtime of a package that npx (or npm exec)
// runs, given the words after npx: the runtime whose binary the package is,
// else the runtime that runs npm packages (node). A command given with -c
// or --call is looked into.
func (r Registry) locateExecTarget(words []string, from int, depth int) launch {
	node := launch{Launch: Launch{Words: words, At: -1}}
	node.rt, node.found = r.packages()
	for i := from; i < len(words); i++ {
		word := words[i]
		if call, n := optionValue(words, i, "-c", "--call"); n > 0 {
			if l := r.locateInScript(call, depth+1); l.found {
				return l
			}
			return node
		}
		if _, n := optionValue(words, i, "-p", "--package"); n > 0 {
			i += n - 1
			continue
		}
		if word == "--" || strings.HasPrefix(word, "-") {
			continue
		}
		if rt, ok := r.binary(packageName(word)); ok {
			return launch{rt: rt, found: true, Launch: Launch{Words: words, At: -1}}
		}
		return node
	}
	return node
}

// packageName strips the version from a package spec: "deno@2.1" gives
// "deno", "@scope/tool@1" gives "@scope/tool".
func packageName(spec string) string {
	if at := strings.LastIndex(spec, "@"); at > 0 {
		return spec[:at]
	}
	return spec
}

// firstPositional returns the first word of words[from:] that is not an
// option, and its index; "" and len(words) when there is none.
func firstPositional(words []string, from int) (string, int) {
	for i := from; i < len(words); i++ {
		if !strings.HasPrefix(words[i], "-") {
			return words[i], i
		}
	}
	return "", len(words)
}
