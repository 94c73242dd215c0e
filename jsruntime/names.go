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
