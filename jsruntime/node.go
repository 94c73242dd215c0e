package jsruntime

import (
	_ "embed" // the --mode direct preload
	"errors"
	"fmt"
	"slices"
	"strings"
)

// nodeDirect is the preload that redirects the app's listen(PORT) to the
// socket a worker inherits in --mode direct.
//
//go:embed node_direct.js
var nodeDirectSource []byte

var nodeDirect = withPing(nodeDirectSource)

// RefusedExitCode is the exit code with which the --mode direct preload
// refuses an app that cannot run in direct mode (the cluster module, a
// server on PORT handed to a child process, a second listen on PORT),
// after it printed why (EX_CONFIG of sysexits.h).
const RefusedExitCode = 78

// nodeProxy is the preload of proxy mode: listen(PORT) on loopback, each
// request's token echoed, no bytes outside a response.
//
//go:embed node_proxy.js
var nodeProxySource []byte

var nodeProxy = withPing(nodeProxySource)

// serveProxy is Deno's and Bun's preload of proxy mode: the server on PORT
// on loopback, each request's token echoed.
//
//go:embed serve_proxy.js
var serveProxySource []byte

var serveProxy = withPing(serveProxySource)

// pingListener is the ping listener's code, the same in every preload:
// withPing appends it.
//
//go:embed ping.js
var pingListener []byte

// withPing returns the preload source with the ping listener's code
// appended. That code is function declarations only, which the preload's
// own code, run first, may call.
func withPing(source []byte) []byte {
	return append(append(append([]byte(nil), source...), '\n'), pingListener...)
}

// nodeOptionsVar is the environment variable node reads extra options from.
const nodeOptionsVar = "NODE_OPTIONS"

// Node is Node.js. Its V8 heap has a hard cap, --max-old-space-size, with
// the young generation pinned by --max-semi-space-size beside it. The flags
// go on node's command line right after the binary when argv runs node
// itself, otherwise into NODE_OPTIONS, which node reads through any wrapper
// (npm, pnpm, yarn, sh -c ...). It is the runtime of npm packages.
func Node() Runtime {
	return Runtime{
		Name:         "node",
		Binaries:     []string{"nodejs", "node"},
		Wrappers:     []string{"npm", "pnpm", "yarn", "yarnpkg", "corepack", "tsx", "ts-node", "nodemon"},
		InProcess:    []string{"ts-node"},
		RunsPackages: true,
		Memory:       HeapCap,
		SemiSpace:    true,
		HeapSetting:  "--" + heapFlagName,
		Prepare:      prepareNode,
		// NODE_OPTIONS carries --require through wrappers; the preload
		// itself refuses a socket a wrapper did not pass on.
		DirectPreload: nodeDirect,
		DirectHandoff: true,
		ProxyPreload:  nodeProxy,
		UnixUpstream:  true,
		Script:        nodeScript,
	}
}

// nodeScript returns the script of a node command line: the first word
// after node's own options, or the one after "--".
func nodeScript(args []string) string {
	i := nodeScriptIndex(args)
	if i < len(args) && args[i] == "--" {
		i++
	}
	if i >= len(args) || args[i] == "-" {
		return ""
	}
	return args[i]
}

// prepareNode puts the heap limit on a node command line: right after the
// node binary when argv runs node itself, otherwise into NODE_OPTIONS.
func prepareNode(w *Worker, o Options, l Launch) (Applied, error) {
	nodeOptions, _ := lookupVar(*w, nodeOptionsVar)
	envOptions, err := splitNodeOptions(nodeOptions)
	if err != nil {
		return Applied{}, fmt.Errorf("read %s %q: %w", nodeOptionsVar, nodeOptions, err)
	}
	fromEnv := scanHeapFlags(envOptions, true)
	var argvOptions []string
	runsNode := l.Binary()
	if runsNode {
		args := l.Words[l.At+1:]
		argvOptions = args[:nodeScriptIndex(args)]
	}
	fromArgv := scanHeapFlags(argvOptions, true)
	if scanV8Flags(envOptions, semiFlagName, true).found || scanV8Flags(argvOptions, semiFlagName, true).found {
		o.SemiSpaceMB = 0 // the user's own semi-space size wins
	}
	flags := heapFlags(o)
	var a Applied
	// node reads NODE_OPTIONS first and its own options after, so argv wins.
	switch {
	case fromArgv.found:
		a.UserHeapMB, a.UserHeapAt = fromArgv.mb, "argv"
	case fromEnv.found:
		a.UserHeapMB, a.UserHeapAt = fromEnv.mb, nodeOptionsVar
	case o.HeapMB == 0:
		// No limit to pass.
	case runsNode && l.Direct():
		w.Argv = slices.Insert(w.Argv, l.At+1, flags...)
		a.HeapFlag = strings.Join(flags, " ") + " (argv)"
	default:
		nodeOptions = appendNodeOption(nodeOptions, strings.Join(flags, " "))
		setVar(w, nodeOptionsVar, nodeOptions)
		a.HeapFlag = strings.Join(flags, " ") + " (" + nodeOptionsVar + ")"
	}
	if o.Preload != "" {
		// Beside the user's own options, which stay as they are.
		setVar(w, nodeOptionsVar, appendNodeOption(nodeOptions, "--require "+quoteNodeOption(o.Preload)))
	}
	return a, nil
}

// quoteNodeOption quotes a word for NODE_OPTIONS, as splitNodeOptions reads it.
func quoteNodeOption(word string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(word) + `"`
}

// splitNodeOptions splits a NODE_OPTIONS value into options as node does:
// spaces separate options, double quotes group characters, and inside them
// a backslash escapes the next character.
func splitNodeOptions(s string) ([]string, error) {
	var (
		options  []string
		inString bool
		newArg   = true
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inString:
			if i+1 == len(s) {
				return options, errors.New("invalid escape")
			}
			i++
			c = s[i]
		case c == ' ' && !inString:
			newArg = true
			continue
		case c == '"':
			inString = !inString
			continue
		}
		if newArg {
			options = append(options, "")
			newArg = false
		}
		options[len(options)-1] += string(c)
	}
	if inString {
		return options, errors.New("unterminated string")
	}
	return options, nil
}

// appendNodeOption appends option to a NODE_OPTIONS value, keeping the
// rest of the value as it is.
func appendNodeOption(nodeOptions, option string) string {
	if strings.Trim(nodeOptions, " ") == "" {
		return option
	}
	return nodeOptions + " " + option
}

// nodeScriptIndex returns the index in args (the words after the node
// binary) of the first word that is not one of node's own options: the
// script, "-" for standard input, or "--". It is len(args) when node runs
// without a script, as with -e.
func nodeScriptIndex(args []string) int {
	for i := 0; i < len(args); i++ {
		word := args[i]
		switch {
		case word == "--" || word == "-" || !strings.HasPrefix(word, "-"):
			return i
		case nodeOptionTakesValue(word):
			i++
		}
	}
	return len(args)
}

// nodeOptionTakesValue reports whether a node option, written without
// "=", takes the next word as its value.
func nodeOptionTakesValue(option string) bool {
	for _, flag := range []string{heapFlagName, semiFlagName} {
		if _, hasValue, isV8 := splitV8Flag(option, flag); isV8 {
			return !hasValue
		}
	}
	switch option {
	case "-r", "--require", "--import", "--loader", "--experimental-loader",
		"-e", "--eval", "-p", "--print", "-C", "--conditions",
		"--input-type", "--title", "--env-file", "--env-file-if-exists",
		"--inspect-port", "--debug-port", "--redirect-warnings",
		"--diagnostic-dir", "--heapsnapshot-signal", "--icu-data-dir",
		"--openssl-config", "--tls-cipher-list", "--tls-keylog",
		"--unhandled-rejections", "--report-dir", "--report-directory",
		"--report-filename", "--report-signal", "--secure-heap",
		"--secure-heap-min", "--dns-result-order", "--disable-proto",
		"--disable-warning", "--experimental-default-type", "--watch-path",
		"--cpu-prof-dir", "--cpu-prof-name", "--cpu-prof-interval",
		"--heap-prof-dir", "--heap-prof-name", "--heap-prof-interval",
		"--max-http-header-size", "--snapshot-blob", "--trace-event-categories",
		"--trace-event-file-pattern", "--localstorage-file",
		"--experimental-config-file", "--policy-integrity", "--experimental-policy":
		return true
	}
	return false
}

// nodeOptionsHeap finds the heap limit that a NODE_OPTIONS value sets.
func nodeOptionsHeap(nodeOptions string) (heapSetting, error) {
	options, err := splitNodeOptions(nodeOptions)
	if err != nil {
		return heapSetting{}, fmt.Errorf("read %s %q: %w", nodeOptionsVar, nodeOptions, err)
	}
	return scanHeapFlags(options, true), nil
}

// nodeArgvHeap finds the heap limit among node's own options: the words
// after the node binary, up to the script (or "--").
func nodeArgvHeap(args []string) heapSetting {
	return scanHeapFlags(args[:nodeScriptIndex(args)], true)
}
