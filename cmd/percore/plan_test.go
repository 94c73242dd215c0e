package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlanCommand(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--cpus", "2", "--memory", "512M", "--", "node", "server.js"},
			[]string{"workers:  2 (cpus)", "heap:     147MiB", `argv ["node" "--max-old-space-size=147" "--max-semi-space-size=1" "server.js"]`, "heap_size_limit 150MiB", "PERCORE_WORKER_ID=1"}},
		{[]string{"--cpus", "2", "--memory", "256Mi", "--", "node", "server.js"},
			[]string{"workers:  1 (memory", "heap:     134MiB"}},
		{[]string{"--cpus", "2", "--memory", "512M", "--swap", "512M", "--include-swap"},
			[]string{"swap:     512MiB (--swap), counted: true", "heap:     213MiB"}},
		{[]string{"--cpus", "4", "--memory", "2G", "--", "npm", "start"},
			[]string{"workers:  4", "NODE_OPTIONS=--max-old-space-size=268", `argv ["npm" "start"]`}},
		{[]string{"--memory", "1G", "--workers", "2", "--", "bun", "app.js"},
			[]string{"runtime:  bun", "BUN_JSC_forceRAMSize="}},
		{[]string{"--memory", "1G", "--workers", "2", "--heap", "off", "--", "node", "app.js"},
			[]string{`argv ["node" "app.js"]`}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(append([]string{"plan"}, c.args...), []string{"PATH=/usr/bin"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("plan output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestPlanCommandErrors(t *testing.T) {
	for _, args := range [][]string{{"--memory", "lots"}, {"--cpus", "0"}, {"--memory", "1T"}, {"--workers", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"plan"}, args...), nil, &out, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(errOut.String(), strings.TrimLeft(args[0], "-")) {
			t.Errorf("%v: error %q does not name the flag", args, errOut.String())
		}
	}
}

// TestPlanCommandChecksUserHeap checks that "percore plan" shows a heap
// limit set in NODE_OPTIONS as the one in force and warns that it cannot fit.
func TestPlanCommandChecksUserHeap(t *testing.T) {
	for _, args := range [][]string{{"--cpus", "2", "--memory", "512M"}, {"--cpus", "2", "--memory", "512M", "--", "npm", "start"}} {
		var out, errOut bytes.Buffer
		env := []string{"PATH=/usr/bin", "NODE_OPTIONS=--max-old-space-size=4096"}
		if code := run(append([]string{"plan"}, args...), env, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		for _, want := range []string{
			"heap:     4096MiB V8 old space per worker (your setting: NODE_OPTIONS --max-old-space-size; percore's would be 147MiB)",
			"warning:  NODE_OPTIONS --max-old-space-size=4096 does not fit 512MiB: 2 workers × (4096MiB heap + 48MiB young generation + 40MiB idle runtime) = 8368MiB, but 454MiB is left for workers",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q: plan output lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

// percore plan warns when --mode direct will refuse the command's workers:
// a wrapper such as npm starts node as a child that never gets the public
// socket. deno serve and deno task are refused outright, as the run
// refuses them; deno run and bun are not.
func TestPlanWarnsWhenDirectModeWillBeRefused(t *testing.T) {
	const warning = "warning:  --mode direct will refuse these workers: "
	for _, c := range []struct {
		command []string
		want    string // in the output; "" for no warning
	}{
		{[]string{"npm", "start"}, warning + "npm starts node as a child process of its own"},
		{[]string{"pnpm", "start"}, warning + "pnpm starts node"},
		{[]string{"sh", "-c", "npm run build && npm start"}, warning + "npm starts node"},
		{[]string{"node", "server.js"}, ""},
		{[]string{"env", "NODE_ENV=production", "node", "server.js"}, ""},
		{[]string{"deno", "run", "-A", "main.ts"}, ""},
		{[]string{"bun", "server.ts"}, ""},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"plan", "--cpus", "2", "--memory", "1G", "--mode", "direct", "--"}, c.command...)
		if code := run(args, []string{"PATH=/usr/bin"}, &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d: %s", c.command, code, errOut.String())
		}
		if c.want == "" && strings.Contains(out.String(), warning) || !strings.Contains(out.String(), c.want) {
			t.Errorf("%q: plan output should say %q:\n%s", c.command, c.want, out.String())
		}
		if c.want != "" && !strings.Contains(out.String(), "--mode proxy") {
			t.Errorf("%q: the warning does not advise --mode proxy:\n%s", c.command, out.String())
		}
	}
	for _, command := range [][]string{{"deno", "serve", "-A", "main.ts"}, {"deno", "task", "start"}} {
		var out, errOut bytes.Buffer
		args := append([]string{"plan", "--mode", "direct", "--"}, command...)
		if code := run(args, []string{"PATH=/usr/bin"}, &out, &errOut); code != exitUsage ||
			!strings.Contains(errOut.String(), "--mode direct cannot run") {
			t.Errorf("%q: exit %d, %s; want a refusal", command, code, errOut.String())
		}
	}
}
