package jsruntime

import "strings"

// lookupEnv returns the value of name in env, a list of KEY=VALUE entries.
// The last entry wins, as it does for os/exec.
func lookupEnv(env []string, name string) (string, bool) {
	prefix := name + "="
	for i := len(env) - 1; i >= 0; i-- {
		if value, ok := strings.CutPrefix(env[i], prefix); ok {
			return value, true
		}
	}
	return "", false
}

// withEnv returns a copy of env in which name is set to value: the last
// entry for name is replaced in place, earlier ones are dropped, and a new
// entry is appended when there was none.
func withEnv(env []string, name, value string) []string {
	prefix := name + "="
	last := -1
	for i, entry := range env {
		if strings.HasPrefix(entry, prefix) {
			last = i
		}
	}
	out := make([]string, 0, len(env)+1)
	for i, entry := range env {
		switch {
		case i == last:
			out = append(out, prefix+value)
		case !strings.HasPrefix(entry, prefix):
			out = append(out, entry)
		}
	}
	if last < 0 {
		out = append(out, prefix+value)
	}
	return out
}

// validVarName reports whether name can be an environment variable name
// in a NAME=VALUE assignment on a command line.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		letter := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		digit := '0' <= r && r <= '9'
		if !letter && !(digit && i > 0) {
			return false
		}
	}
	return true
}
