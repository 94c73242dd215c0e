package watch

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// DefaultIgnore returns the names ignored wherever they appear under a
// watched directory: dependencies, build outputs and editor temporary files
// (vim writes 4913 to test that it may write a directory). Directories
// whose name starts with a dot (.git, .next, .cache) are ignored too; files
// starting with a dot, such as .env, are not.
func DefaultIgnore() []string {
	return []string{
		"node_modules", "bower_components", "jspm_packages",
		"dist", "build", "coverage", "out", "tmp",
		"*.swp", "*.swo", "*.swx", "*~", "4913", ".#*", "#*#", "*.tmp", ".DS_Store",
	}
}

// ignorer decides which paths under the roots are ignored.
type ignorer struct {
	names []string        // patterns matched against one path element
	paths []string        // patterns with a slash, matched against the path relative to its root
	keep  map[string]bool // directories never ignored (those holding the app's script)
}

// newIgnorer checks the extra patterns and builds the matcher. keep are
// absolute directories that stay watched even when their names match.
func newIgnorer(extra, keep []string) (*ignorer, error) {
	ig := &ignorer{keep: map[string]bool{}}
	for _, p := range append(DefaultIgnore(), extra...) {
		p = strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("ignore pattern %q: %w", p, err)
		}
		if strings.Contains(p, "/") {
			ig.paths = append(ig.paths, p)
		} else {
			ig.names = append(ig.names, p)
		}
	}
	for _, k := range keep {
		for d := filepath.Clean(k); ; d = filepath.Dir(d) {
			ig.keep[d] = true
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return ig, nil
}

// ignored reports whether abs, found under root, is ignored; isDir says
// whether abs is a directory. A path is ignored when one of its elements
// below root matches a name pattern (or is a dot-directory), or when its
// path relative to root, or a leading part of it, matches a path pattern.
func (ig *ignorer) ignored(root, abs string, isDir bool) bool {
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return false
	}
	elems := strings.Split(filepath.ToSlash(rel), "/")
	dir := root
	for i, e := range elems {
		dir = filepath.Join(dir, e)
		last := i == len(elems)-1
		if ig.keep[dir] && (!last || isDir) {
			continue
		}
		if strings.HasPrefix(e, ".") && (!last || isDir) {
			return true
		}
		for _, p := range ig.names {
			if ok, _ := path.Match(p, e); ok {
				return true
			}
		}
		prefix := strings.Join(elems[:i+1], "/")
		for _, p := range ig.paths {
			if ok, _ := path.Match(p, prefix); ok {
				return true
			}
		}
	}
	return false
}
