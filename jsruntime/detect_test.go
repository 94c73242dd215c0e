package jsruntime

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		argv string // words separated by "|"
		want Kind
	}{
		{"node|server.js", Node},
		{"/usr/local/bin/node|server.js", Node},
		{"nodejs|server.js", Node},
		{"node20|server.js", Node},
		{"node-18|server.js", Node},
		{"/opt/node/v20.11.1/bin/node|dist/main.js", Node},
		{"node|--max-old-space-size=200|server.js", Node},
		{"npm|start", Node},
		{"npm|run|serve", Node},
		{"/usr/bin/npx|next|start", Node},
		{"pnpm|start", Node},
		{"yarn|start", Node},
		{"corepack|pnpm|start", Node},
		{"tsx|server.ts", Node},
		{"npx|deno|run|main.ts", Deno},
		{"npx|--yes|deno@2.1.0|serve|main.ts", Deno},
		{"npx|-p|typescript|bun|run|x.ts", Bun},
		{"npm|exec|--|deno|run|main.ts", Deno},
		{"npx|-c|deno run main.ts", Deno},
		{"deno|run|-A|main.ts", Deno},
		{"deno|serve|main.ts", Deno},
		{"deno|task|start", Deno},
		{"deno2|main.ts", Deno},
		{"/root/.deno/bin/deno|run|main.ts", Deno},
		{"bun|server.js", Bun},
		{"bun|run|start", Bun},
		{"bunx|vite", Bun},
		{"/usr/local/bin/bun|index.ts", Bun},
		{"env|node|server.js", Node},
		{"env|NODE_ENV=production|PORT=1|node|server.js", Node},
		{"/usr/bin/env|-i|-u|HOME|--chdir=/app|deno|run|main.ts", Deno},
		{"env|-S|bun --smol server.js", Bun},
		{"sh|-c|node server.js", Node},
		{"/bin/sh|-c|exec node server.js", Node},
		{"bash|-lc|cd /app && NODE_ENV=production deno run -A main.ts", Deno},
		{"sh|-ec|npm run migrate; npm start", Node},
		{"bash|-o|pipefail|-c|bun server.js | tee log", Bun},
		{"sh|-c|'node' \"server.js\"", Node},
		{"sh|-c|echo starting # node", Other},
		{"busybox|sh|-c|node server.js", Node},
		{"sh|start.sh", Other},
		{"sh|-c|./start.sh", Other},
		{"python3|-m|http.server", Other},
		{"nodemon|server.js", Node},
		{"node_modules/.bin/next|start", Node},
		{"/app/node_modules/.bin/remix-serve|build/index.js", Node},
		{"nodered", Other},
		{"denoify", Other},
		{"bunyan", Other},
		{"./server", Other},
		{"env", Other},
		{"", Other},
	}
	for _, tt := range tests {
		argv := splitArgs(tt.argv)
		if got := Detect(argv); got != tt.want {
			t.Errorf("Detect(%q) = %v, want %v", argv, got, tt.want)
		}
	}
}

func TestDetectNil(t *testing.T) {
	if got := Detect(nil); got != Other {
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
