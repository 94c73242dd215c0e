package jsruntime

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		argv string // words separated by "|"
		want string
	}{
		{"node|server.js", "node"},
		{"/usr/local/bin/node|server.js", "node"},
		{"nodejs|server.js", "node"},
		{"node20|server.js", "node"},
		{"node-18|server.js", "node"},
		{"/opt/node/v20.11.1/bin/node|dist/main.js", "node"},
		{"node|--max-old-space-size=200|server.js", "node"},
		{"npm|start", "node"},
		{"npm|run|serve", "node"},
		{"/usr/bin/npx|next|start", "node"},
		{"pnpm|start", "node"},
		{"yarn|start", "node"},
		{"corepack|pnpm|start", "node"},
		{"tsx|server.ts", "node"},
		{"npx|deno|run|main.ts", "deno"},
		{"npx|--yes|deno@2.1.0|serve|main.ts", "deno"},
		{"npx|-p|typescript|bun|run|x.ts", "bun"},
		{"npm|exec|--|deno|run|main.ts", "deno"},
		{"npx|-c|deno run main.ts", "deno"},
		{"deno|run|-A|main.ts", "deno"},
		{"deno|serve|main.ts", "deno"},
		{"deno|task|start", "deno"},
		{"deno2|main.ts", "deno"},
		{"/root/.deno/bin/deno|run|main.ts", "deno"},
		{"bun|server.js", "bun"},
		{"bun|run|start", "bun"},
		{"bunx|vite", "bun"},
		{"/usr/local/bin/bun|index.ts", "bun"},
		{"env|node|server.js", "node"},
		{"env|NODE_ENV=production|PORT=1|node|server.js", "node"},
		{"/usr/bin/env|-i|-u|HOME|--chdir=/app|deno|run|main.ts", "deno"},
		{"env|-S|bun --smol server.js", "bun"},
		{"sh|-c|node server.js", "node"},
		{"/bin/sh|-c|exec node server.js", "node"},
		{"bash|-lc|cd /app && NODE_ENV=production deno run -A main.ts", "deno"},
		{"sh|-ec|npm run migrate; npm start", "node"},
		{"bash|-o|pipefail|-c|bun server.js | tee log", "bun"},
		{"sh|-c|'node' \"server.js\"", "node"},
		{"sh|-c|echo starting # node", "other"},
		{"busybox|sh|-c|node server.js", "node"},
		{"sh|start.sh", "other"},
		{"sh|-c|./start.sh", "other"},
		{"python3|-m|http.server", "other"},
		{"nodemon|server.js", "node"},
		{"node_modules/.bin/next|start", "node"},
		{"/app/node_modules/.bin/remix-serve|build/index.js", "node"},
		{"nodered", "other"},
		{"denoify", "other"},
		{"bunyan", "other"},
		{"./server", "other"},
		{"env", "other"},
		{"", "other"},
	}
	for _, tt := range tests {
		argv := splitArgs(tt.argv)
		if got := Detect(argv); got.Name != tt.want {
			t.Errorf("Detect(%q) = %v, want %v", argv, got, tt.want)
		}
	}
}

// ChildWrapper names the wrapper that starts the runtime as a child process
// of its own, which inherits no descriptor beyond 0-2.
func TestChildWrapper(t *testing.T) {
	for argv, want := range map[string]string{
		"node|server.js":                      "",
		"env|NODE_ENV=production|node|app.js": "",
		"sh|-c|exec node server.js":           "",
		"node_modules/.bin/next|start":        "",
		"ts-node|server.ts":                   "",
		"npm|start":                           "npm",
		"/usr/bin/npm|run|serve":              "npm",
		"pnpm|start":                          "pnpm",
		"yarn|start":                          "yarn",
		"corepack|pnpm|start":                 "corepack",
		"tsx|server.ts":                       "tsx",
		"nodemon|server.js":                   "nodemon",
		"npx|next|start":                      "npx",
		"npm|exec|--|next|start":              "npm",
		"sh|-c|npm run migrate && npm start":  "npm",
		"npx|-c|node server.js":               "npx",
		"bunx|vite":                           "bunx",
		"python3|-m|http.server":              "",
		"":                                    "",
	} {
		if got := Default().ChildWrapper(splitArgs(argv)); got != want {
			t.Errorf("ChildWrapper(%q) = %q, want %q", argv, got, want)
		}
	}
}

func TestDetectNil(t *testing.T) {
	if got := Detect(nil); !got.IsOther() {
		t.Errorf("Detect(nil) = %v, want other", got)
	}
}

// splitArgs turns "a|b|c" into an argv; "" gives an empty one.
func splitArgs(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "|")
}
