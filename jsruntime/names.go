package jsruntime

import (
	"path/filepath"
	"strings"
)

// commandName returns the base name of a command word: "/usr/bin/node"
// gives "node".
func commandName(word string) string {
	if word == "" {
		return ""
	}
	return filepath.Base(word)
}

// runtimeBinary tells the runtime that a binary of this name is: node,
// nodejs, deno and bun, also with a version after the name (node20,
// node-20, nodejs18, node20.11, deno2, bun1.1). Other binaries give Other.
func runtimeBinary(word string) Kind {
	name := commandName(word)
	for _, rt := range []struct {
		prefix string
		kind   Kind
	}{
		{"nodejs", Node}, {"node", Node}, {"deno", Deno}, {"bun", Bun},
	} {
		if rest, ok := strings.CutPrefix(name, rt.prefix); ok && isVersionSuffix(rest) {
			return rt.kind
		}
	}
	return Other
}

// isVersionSuffix reports whether s is empty or a version put after a
// binary's name: an optional "-" or "v", then numbers separated by dots.
func isVersionSuffix(s string) bool {
	s = strings.TrimPrefix(s, "-")
	s = strings.TrimPrefix(s, "v")
	if s == "" {
		return true
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

// nodeWrapper reports whether a command of this name is a Node program that
// starts node children (package managers and loaders): they and their
// children read NODE_OPTIONS.
func nodeWrapper(name string) bool {
	switch name {
	case "npm", "pnpm", "yarn", "yarnpkg", "corepack", "tsx", "ts-node", "nodemon":
		return true
	}
	return false
}

// isPackageBin reports whether a command word is the path of an npm
// package's binary, such as node_modules/.bin/next: a node script.
func isPackageBin(word string) bool {
	return strings.HasPrefix(word, "node_modules/.bin/") || strings.Contains(word, "/node_modules/.bin/")
}

// packageRunner reports whether a command of this name runs a package's
// binary named by its first argument, as npx does.
func packageRunner(name string) bool {
	return name == "npx" || name == "pnpx"
}

// isShell reports whether a command of this name is a POSIX-style shell
// that runs a script given with -c.
func isShell(name string) bool {
	switch name {
	case "sh", "bash", "dash", "zsh", "ash", "ksh", "mksh":
		return true
	}
	return false
}
