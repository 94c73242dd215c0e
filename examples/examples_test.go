package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// appCheck is what a test expects of one example app.
type appCheck struct {
	// want is a piece of the answer to GET / through percore.
	want string
	// setup prepares the app before percore starts, e.g. installs packages.
	setup func(t *testing.T)
	// check runs more requests; workers are the workers' own addresses.
	check func(t *testing.T, in *instance, workers []string)
}

// appChecks maps each example's entry file, as its README names it, to
// what it must do. Every README command must name one of these files and
// every file must be run by some README command.
func appChecks() map[string]appCheck {
	return map[string]appCheck{
		"examples/node-hello/server.js": {want: `"hello":"world"`},
		"examples/express/server.js":    {want: `"hello":"express"`, setup: npmInstall("examples/express")},
		"examples/websocket/server.js":  {want: "<title>percore WebSocket echo</title>", check: checkWebSocket},
		"examples/deno/main.ts":         {want: `"hello":"deno"`},
		"examples/deno/serve.ts":        {want: `"hello":"deno serve"`},
		"examples/bun/server.ts":        {want: `"hello":"bun"`},
		"examples/worker-id/server.js":  {want: `"workers":2`, check: checkWorkerID},
	}
}

// readmeCommand is one `go run ./cmd/percore ...` command from an example's
// README, as a user would type it at the repository root.
type readmeCommand struct {
	Env     []string // VAR=value words before go
	Flags   []string // percore's flags
	Command []string // the app's command, after "--"
}

// script is the command's first .js or .ts argument: the app's entry file.
func (c readmeCommand) script() string {
	for _, a := range c.Command[1:] {
		if strings.HasSuffix(a, ".js") || strings.HasSuffix(a, ".ts") {
			return a
		}
	}
	return ""
}

// codeSpan matches a Markdown inline code span.
var codeSpan = regexp.MustCompile("`([^`]+)`")

// readmeCommands returns the percore commands in the inline code spans of
// a README. A span may chain commands with &&; only the percore one counts.
func readmeCommands(path string) ([]readmeCommand, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cmds []readmeCommand
	for _, m := range codeSpan.FindAllStringSubmatch(string(data), -1) {
		if !strings.Contains(m[1], "go run ./cmd/percore") {
			continue
		}
		words, err := shellWords(m[1])
		if err != nil {
			return nil, err
		}
		var part []string
		for _, w := range append(words, "&&") {
			if w != "&&" {
				part = append(part, w)
				continue
			}
			if c, ok := parsePercoreCommand(part); ok {
				cmds = append(cmds, c)
			}
			part = nil
		}
	}
	return cmds, nil
}

// parsePercoreCommand reads [VAR=value...] go run ./cmd/percore [flags] -- command.
func parsePercoreCommand(words []string) (readmeCommand, bool) {
	var c readmeCommand
	i := 0
	for i < len(words) && isAssignment(words[i]) {
		c.Env = append(c.Env, words[i])
		i++
	}
	if len(words) < i+3 || words[i] != "go" || words[i+1] != "run" || words[i+2] != "./cmd/percore" {
		return c, false
	}
	rest := words[i+3:]
	for j, w := range rest {
		if w == "--" {
			c.Flags, c.Command = rest[:j], rest[j+1:]
			return c, len(c.Command) > 0
		}
	}
	return c, false
}

// TestExamples runs every example app the way its README says, under the
// percore binary the Dockerfile builds, with two workers: each must answer
// GET / with 200 through percore's proxy, pass its own checks, and stop
// gracefully on SIGTERM (percore and every worker exit 0).
func TestExamples(t *testing.T) {
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	checks := appChecks()
	ran := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "docker" || d.Name() == "deploy" {
			continue
		}
		cmds, err := readmeCommands(filepath.Join(d.Name(), "README.md"))
		if err != nil {
			t.Errorf("example %s: %v", d.Name(), err)
			continue
		}
		if len(cmds) == 0 {
			t.Errorf("examples/%s/README.md shows no `go run ./cmd/percore -- ...` command", d.Name())
		}
		for i, c := range cmds {
			script := c.script()
			check, ok := checks[script]
			if !ok {
				t.Errorf("examples/%s/README.md runs %q, which appChecks does not know", d.Name(), script)
				continue
			}
			ran[script] = true
			t.Run(fmt.Sprintf("%s/%d", d.Name(), i), func(t *testing.T) {
				t.Parallel()
				runExample(t, c, check)
			})
		}
	}
	for script := range checks {
		if !ran[script] {
			t.Errorf("no example README runs %s", script)
		}
	}
}

func runExample(t *testing.T, c readmeCommand, check appCheck) {
	line := append(append(append(slices.Clone(c.Env), "go", "run", "./cmd/percore"), c.Flags...), "--")
	t.Log(strings.Join(append(line, c.Command...), " "))
	command := append([]string{needRuntime(t, c.Command[0])}, c.Command[1:]...)
	if check.setup != nil {
		check.setup(t)
	}
	args := append([]string{"--workers", "2"}, c.Flags...)
	args = append(append(args, "--"), command...)
	in := startPercore(t, repoRoot(), c.Env, args...)
	workers := in.workers(2)

	body := get(t, "http://"+in.addr+"/")
	if !strings.Contains(body, check.want) {
		t.Errorf("GET / through percore answered %q, want it to contain %q", body, check.want)
	}
	if check.check != nil {
		check.check(t, in, workers)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		get(t, "http://"+in.admin+path)
	}
	in.stop()
}

// npmInstall installs an example's packages when its node_modules is
// missing. It runs `npm ci` rather than the README's `npm install`: that
// installs exactly what package-lock.json says and never rewrites the file.
// If npm fails, the test fails in CI and is skipped elsewhere (no registry,
// say).
func npmInstall(dir string) func(t *testing.T) {
	return func(t *testing.T) {
		abs := filepath.Join(repoRoot(), dir)
		if _, err := os.Stat(filepath.Join(abs, "node_modules")); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--prefix", abs, "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		// A half-installed node_modules would skip the install next time.
		_ = os.RemoveAll(filepath.Join(abs, "node_modules"))
		if os.Getenv("CI") != "" {
			t.Fatalf("npm ci --prefix %s: %v\n%s", dir, err, out)
		}
		t.Skipf("npm ci --prefix %s failed (is the npm registry reachable?): %v\n%s", dir, err, out)
	}
}

// checkWebSocket echoes a message over a real RFC 6455 connection, straight
// to a worker and through percore's proxy.
func checkWebSocket(t *testing.T, in *instance, workers []string) {
	if err := wsEcho(workers[0], "hello from a worker's own port"); err != nil {
		t.Errorf("WebSocket to worker %s: %v", workers[0], err)
	}
	if err := wsEcho(in.addr, "hello through percore"); err != nil {
		t.Errorf("WebSocket through percore: %v", err)
	}
}

// workerIDAnswer is the worker-id example's answer.
type workerIDAnswer struct {
	Worker  int  `json:"worker"`
	Workers int  `json:"workers"`
	RunsJob bool `json:"runsJob"`
	Job     struct {
		Runs int `json:"runs"`
	} `json:"job"`
}

// checkWorkerID asks each worker directly: worker 0 runs the job, the other
// does not, and both know there are two.
func checkWorkerID(t *testing.T, _ *instance, workers []string) {
	var got []workerIDAnswer
	for _, addr := range workers {
		var a workerIDAnswer
		if err := json.Unmarshal([]byte(getWorker(t, addr, "/")), &a); err != nil {
			t.Fatalf("worker %s: %v", addr, err)
		}
		got = append(got, a)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Worker < got[j].Worker })
	if got[0].Worker != 0 || got[1].Worker != 1 || got[0].Workers != 2 || got[1].Workers != 2 {
		t.Fatalf("workers answered %+v, want ids 0 and 1 of 2", got)
	}
	if !got[0].RunsJob || got[0].Job.Runs < 1 {
		t.Errorf("worker 0 answered %+v, want it to run the job", got[0])
	}
	if got[1].RunsJob || got[1].Job.Runs != 0 {
		t.Errorf("worker 1 answered %+v, want it not to run the job", got[1])
	}
}
