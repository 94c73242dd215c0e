package jsruntime

import "testing"

func TestScript(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"node", "server.js"}, "server.js"},
		{[]string{"/usr/bin/node", "--max-old-space-size=512", "-r", "dotenv/config", "src/app.js", "--port", "1"}, "src/app.js"},
		{[]string{"node", "--", "app.js"}, "app.js"},
		{[]string{"node", "-e", "1"}, ""},
		{[]string{"env", "NODE_ENV=dev", "node", "dist/server.js"}, "dist/server.js"},
		{[]string{"sh", "-c", "exec node lib/main.mjs"}, "lib/main.mjs"},
		{[]string{"npm", "start"}, ""},
		{[]string{"deno", "run", "--allow-net", "main.ts"}, "main.ts"},
		{[]string{"deno", "serve", "-A", "serve.ts"}, "serve.ts"},
		{[]string{"deno", "task", "dev"}, ""},
		{[]string{"bun", "server.ts"}, "server.ts"},
		{[]string{"bun", "run", "--smol", "src/index.ts"}, "src/index.ts"},
		{[]string{"bun", "run", "dev"}, ""},
		{[]string{"python3", "app.py"}, ""},
	} {
		if got := Default().Script(c.argv); got != c.want {
			t.Errorf("Script(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}
