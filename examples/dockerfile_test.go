package examples_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined: "RUN", "go build ...".
type instruction struct {
	Cmd  string // upper case
	Args string
	Line int // 1-based line where it starts
}

// stage is the instructions from one FROM to the next.
type stage struct {
	From         string // the image, e.g. "scratch" or "golang:${GO_VERSION}"
	Name         string // the AS name, or ""
	Instructions []instruction
}

// dockerfile is the parsed form of a Dockerfile: the ARGs before the first
// FROM, and the stages.
type dockerfile struct {
	GlobalArgs []instruction
	Stages     []stage
}

// parseDockerfile reads a Dockerfile: comment lines are dropped, lines ending
// in a backslash are joined, and instructions are grouped by stage. It knows
// no heredocs, which none of our Dockerfiles use.
func parseDockerfile(path string) (*dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	df := &dockerfile{}
	var cur strings.Builder
	start := 0
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) != 1 && (len(f) != 3 || !strings.EqualFold(f[1], "AS")) {
				return fmt.Errorf("%s:%d: cannot read FROM %s", path, start, in.Args)
			}
			st := stage{From: f[0]}
			if len(f) == 3 {
				st.Name = f[2]
			}
			df.Stages = append(df.Stages, st)
			return nil
		}
		if len(df.Stages) == 0 {
			if in.Cmd != "ARG" {
				return fmt.Errorf("%s:%d: %s before the first FROM", path, start, in.Cmd)
			}
			df.GlobalArgs = append(df.GlobalArgs, in)
			return nil
		}
		last := &df.Stages[len(df.Stages)-1]
		last.Instructions = append(last.Instructions, in)
		return nil
	}
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", path)
	}
	return df, nil
}

// final is the last stage, the image the Dockerfile produces.
func (df *dockerfile) final() stage { return df.Stages[len(df.Stages)-1] }

// globalArg returns the default of an ARG declared before the first FROM,
// and whether it has one.
func (df *dockerfile) globalArg(name string) (string, bool) {
	for _, in := range df.GlobalArgs {
		if k, v, ok := strings.Cut(in.Args, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// expand replaces ${NAME} and $NAME in s with the defaults of the global
// ARGs, as a build without --build-arg does: each default is expanded with
// the ARGs declared before it.
func (df *dockerfile) expand(s string) string {
	vars := map[string]string{}
	lookup := func(name string) string { return vars[name] }
	for _, in := range df.GlobalArgs {
		if k, v, ok := strings.Cut(in.Args, "="); ok {
			vars[k] = os.Expand(v, lookup)
		}
	}
	return os.Expand(s, lookup)
}

// find returns the instructions of a stage with the given command.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// hasArg reports whether the stage declares ARG name (with or without a default).
func (s stage) hasArg(name string) bool {
	for _, in := range s.find("ARG") {
		for _, f := range strings.Fields(in.Args) {
			if k, _, _ := strings.Cut(f, "="); k == name {
				return true
			}
		}
	}
	return false
}

// goBuild is the `go build` command of a Dockerfile's RUN instruction.
type goBuild struct {
	Stage  stage
	Line   int
	Env    []string // the VAR=value words before "go", unexpanded
	Args   []string // the words after "go build", unexpanded
	Output string   // the -o path, unexpanded
}

// findGoBuild returns the one RUN instruction that runs `go build`.
func (df *dockerfile) findGoBuild() (*goBuild, error) {
	var found *goBuild
	for _, st := range df.Stages {
		for _, in := range st.find("RUN") {
			words, err := shellWords(in.Args)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", in.Line, err)
			}
			i := 0
			for i < len(words) && isAssignment(words[i]) {
				i++
			}
			if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
				continue
			}
			if found != nil {
				return nil, fmt.Errorf("lines %d and %d both run go build", found.Line, in.Line)
			}
			gb := &goBuild{Stage: st, Line: in.Line, Env: words[:i], Args: words[i+2:]}
			for j, a := range gb.Args {
				switch {
				case a == "&&" || a == ";" || a == "|" || a == "||":
					return nil, fmt.Errorf("line %d: the go build RUN must hold that one command", in.Line)
				case a == "-o" && j+1 < len(gb.Args):
					gb.Output = gb.Args[j+1]
				case strings.HasPrefix(a, "-o="):
					gb.Output = strings.TrimPrefix(a, "-o=")
				}
			}
			found = gb
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no RUN instruction runs go build")
	}
	if found.Output == "" {
		return nil, fmt.Errorf("line %d: go build has no -o", found.Line)
	}
	return found, nil
}

// flagValue returns the value of a go build flag given as "-flag value" or
// "-flag=value".
func (gb *goBuild) flagValue(name string) (string, bool) {
	for j, a := range gb.Args {
		if a == name && j+1 < len(gb.Args) {
			return gb.Args[j+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// envValue returns the value of VAR=value set before go.
func (gb *goBuild) envValue(name string) (string, bool) {
	for _, kv := range gb.Env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// command builds an exec.Cmd that runs this go build in repoRoot for the
// host's platform, with VERSION set to version and the output at out. Every
// variable the line uses must be one of VERSION, TARGETOS and TARGETARCH, so
// that a new one is noticed here.
func (gb *goBuild) command(repoRoot, version, out string) (*exec.Cmd, error) {
	vars := map[string]string{"VERSION": version, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	expand := func(s string) (string, error) {
		var missing []string
		v := os.Expand(s, func(k string) string {
			val, ok := vars[k]
			if !ok {
				missing = append(missing, k)
			}
			return val
		})
		if len(missing) > 0 {
			return "", fmt.Errorf("line %d uses ${%s}, which the test does not know", gb.Line, missing[0])
		}
		return v, nil
	}
	env := os.Environ()
	for _, kv := range gb.Env {
		v, err := expand(kv)
		if err != nil {
			return nil, err
		}
		env = append(env, v)
	}
	args := []string{"build"}
	for j := 0; j < len(gb.Args); j++ {
		a := gb.Args[j]
		switch {
		case a == "-o":
			args = append(args, "-o", out)
			j++
			continue
		case strings.HasPrefix(a, "-o="):
			args = append(args, "-o", out)
			continue
		}
		v, err := expand(a)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = env
	return cmd, nil
}

// assignment matches a shell variable assignment, VAR=value.
var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignment.MatchString(w) }

// shellWords splits a shell command line into words, as sh does for the
// quoting our Dockerfiles use: whitespace separates words, and single or
// double quotes group them. Expansions are left in place.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// repoRoot is the repository root, the Dockerfile's build context.
func repoRoot() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}
