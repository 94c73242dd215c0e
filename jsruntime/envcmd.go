package jsruntime

import (
	"slices"
	"strings"
)

// envCommand is an env(1) invocation at the front of a command line, as in
// "env -u DEBUG NODE_ENV=production node server.js".
type envCommand struct {
	clears   bool     // -i: the command starts from an empty environment
	unsets   []string // -u NAME
	assigns  []int    // indexes of the NAME=VALUE words, in order
	split    string   // the -S string, whose words come before the command
	hasSplit bool
	cmdAt    int // index of the command env runs, len(words) when there is none
}

// parseEnvCommand reads the env(1) invocation whose "env" word is at
// words[at]: its options (GNU coreutils spelling), then its assignments.
func parseEnvCommand(words []string, at int) envCommand {
	e := envCommand{}
	i := e.parseOptions(words, at+1)
	for ; i < len(words); i++ {
		name, _, ok := strings.Cut(words[i], "=")
		if !ok || !validVarName(name) {
			break
		}
		e.assigns = append(e.assigns, i)
	}
	e.cmdAt = i
	return e
}

// parseOptions reads env's options from words[i:] and returns the index of
// the first word after them.
func (e *envCommand) parseOptions(words []string, i int) int {
	for ; i < len(words); i++ {
		word := words[i]
		value, consumed := optionValue(words, i, "-u", "--unset")
		if consumed > 0 {
			e.unsets = append(e.unsets, value)
			i += consumed - 1
			continue
		}
		if value, consumed = optionValue(words, i, "-S", "--split-string"); consumed > 0 {
			e.split, e.hasSplit = value, true
			i += consumed - 1
			continue
		}
		if _, consumed = optionValue(words, i, "-C", "--chdir"); consumed > 0 {
			i += consumed - 1
			continue
		}
		switch {
		case word == "--":
			return i + 1
		case word == "-" || word == "--ignore-environment":
			e.clears = true
		case strings.HasPrefix(word, "--"):
			// --null, --debug, --default-signal[=SIG] and the like.
		case strings.HasPrefix(word, "-") && len(word) > 1:
			e.clears = e.clears || strings.Contains(word, "i")
		default:
			return i
		}
	}
	return i
}

// optionValue reads an option that takes a value, given its short and long
// spellings: "-u NAME", "-uNAME", "--unset NAME" or "--unset=NAME". It
// returns the value and how many words it took, 0 when words[i] is not
// that option.
func optionValue(words []string, i int, short, long string) (string, int) {
	word := words[i]
	if word == short || word == long {
		if i+1 < len(words) {
			return words[i+1], 2
		}
		return "", 1
	}
	if value, ok := strings.CutPrefix(word, long+"="); ok {
		return value, 1
	}
	if value, ok := strings.CutPrefix(word, short); ok && !strings.HasPrefix(word, "--") {
		return value, 1
	}
	return "", 0
}

// assignment returns the index in words of env's last assignment to name.
func (e envCommand) assignment(words []string, name string) (int, bool) {
	for i := len(e.assigns) - 1; i >= 0; i-- {
		at := e.assigns[i]
		if strings.HasPrefix(words[at], name+"=") {
			return at, true
		}
	}
	return 0, false
}

// drops reports whether env takes name out of the environment it passes on.
func (e envCommand) drops(name string) bool {
	return e.clears || slices.Contains(e.unsets, name)
}

// envChain returns the env(1) invocations that argv starts with, outermost
// first, as in "env A=1 env -u B node app.js".
func envChain(argv []string) []envCommand {
	var chain []envCommand
	for at := 0; at < len(argv) && commandName(argv[at]) == "env"; {
		e := parseEnvCommand(argv, at)
		chain = append(chain, e)
		if e.hasSplit {
			break
		}
		at = e.cmdAt
	}
	return chain
}

// lookupVar returns the value of name as the command in w.Argv sees it:
// env(1) at the front of argv may set, unset or clear it.
func lookupVar(w Worker, name string) (string, bool) {
	chain := envChain(w.Argv)
	for i := len(chain) - 1; i >= 0; i-- {
		if at, ok := chain[i].assignment(w.Argv, name); ok {
			return strings.CutPrefix(w.Argv[at], name+"=")
		}
		if chain[i].drops(name) {
			return "", false
		}
	}
	return lookupEnv(w.Env, name)
}

// setVar makes the command in w.Argv see name=value. It goes into w.Env,
// unless an env(1) at the front of argv sets, unsets or clears name: then
// it goes on env's command line, where the command still sees it.
func setVar(w *Worker, name, value string) {
	chain := envChain(w.Argv)
	for i := len(chain) - 1; i >= 0; i-- {
		e := chain[i]
		if at, ok := e.assignment(w.Argv, name); ok {
			w.Argv[at] = name + "=" + value
			return
		}
		if e.drops(name) && !e.hasSplit {
			w.Argv = slices.Insert(w.Argv, e.cmdAt, name+"="+value)
			return
		}
	}
	w.Env = withEnv(w.Env, name, value)
}
