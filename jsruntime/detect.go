package jsruntime

import "strings"

// maxNesting bounds how deep Detect looks through wrappers that contain
// other commands (env, sh -c, npx -c).
const maxNesting = 8

// launch says where a command line starts its JavaScript runtime.
type launch struct {
	kind Kind
	// words is the command in which the runtime was found: the worker's
	// argv, or the words of one command of a shell script.
	words []string
	// at is the index in words of the runtime binary (node, deno, bun), or
	// -1 when a wrapper such as npm starts the runtime itself.
	at int
	// inArgv is true when words is the worker's argv, so that the runtime's
	// own flags can be inserted into it.
	inArgv bool
}

// binary reports whether the runtime binary itself is in words.
func (l launch) binary() bool {
	return l.at >= 0
}

// direct reports whether argv runs the runtime binary itself, so that
// flags can be put on its command line.
func (l launch) direct() bool {
	return l.inArgv && l.binary()
}

// Detect tells which JavaScript runtime a command line runs. It knows the
// runtime binaries by their base name, also with a path or a version
// (node, /usr/local/bin/node, nodejs, node20, deno, bun), and looks through
// the wrappers that start them: env(1) with its options and assignments,
// sh -c and bash -c scripts (the first command of the script that runs a
// runtime), package managers that run node (npm, pnpm, yarn, corepack, tsx,
// ts-node, nodemon) and the binaries of npm packages (a path through
// node_modules/.bin), npx and pnpx (which run the runtime named by their
// package, node unless it is deno or bun), and bunx. Any other command is
// Other.
func Detect(argv []string) Kind {
	return locate(argv).kind
}

// locate finds where argv starts its runtime.
func locate(argv []string) launch {
	return locateFrom(argv, 0, true, 0)
}

// locateFrom finds the runtime of the command that starts at words[at].
func locateFrom(words []string, at int, inArgv bool, depth int) launch {
	none := launch{kind: Other, words: words, at: -1, inArgv: inArgv}
	if at >= len(words) || depth > maxNesting {
		return none
	}
	name := commandName(words[at])
	if kind := runtimeBinary(name); kind != Other {
		return launch{kind: kind, words: words, at: at, inArgv: inArgv}
	}
	switch {
	case name == "env":
		return locateAfterEnv(words, at, inArgv, depth)
	case isShell(name):
		if script, ok := shellScript(words, at); ok {
			return locateInScript(script, depth+1)
		}
	case name == "busybox":
		return locateFrom(words, at+1, inArgv, depth+1)
	case name == "bunx":
		return launch{kind: Bun, words: words, at: -1, inArgv: inArgv}
	case packageRunner(name):
		return locateExecTarget(words, at+1, depth)
	case nodeWrapper(name) || isPackageBin(words[at]):
		if sub, i := firstPositional(words, at+1); isExecSubcommand(name, sub) {
			return locateExecTarget(words, i+1, depth)
		}
		return launch{kind: Node, words: words, at: -1, inArgv: inArgv}
	}
	return none
}

// locateAfterEnv finds the runtime of the command that env(1) at words[at]
// runs.
func locateAfterEnv(words []string, at int, inArgv bool, depth int) launch {
	e := parseEnvCommand(words, at)
	if e.hasSplit {
		split := append(shellWords(e.split), words[e.cmdAt:]...)
		return locateFrom(split, 0, false, depth+1)
	}
	return locateFrom(words, e.cmdAt, inArgv, depth+1)
}

// locateInScript finds the runtime that a shell script starts: the first
// of its commands that runs one.
func locateInScript(script string, depth int) launch {
	for _, command := range shellCommands(script) {
		command = skipCommandPrefix(command)
		if l := locateFrom(command, 0, false, depth); l.kind != Other {
			return l
		}
	}
	return launch{kind: Other, at: -1}
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
// runs, given the words after npx: node unless the package is deno or bun.
// A command given with -c or --call is looked into.
func locateExecTarget(words []string, from int, depth int) launch {
	node := launch{kind: Node, words: words, at: -1}
	for i := from; i < len(words); i++ {
		word := words[i]
		if call, n := optionValue(words, i, "-c", "--call"); n > 0 {
			if l := locateInScript(call, depth+1); l.kind != Other {
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
		if kind := runtimeBinary(packageName(word)); kind != Other {
			return launch{kind: kind, words: words, at: -1}
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
