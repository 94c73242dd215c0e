package jsruntime

import (
	"slices"
	"testing"
)

// unset marks a variable that must not be in the prepared environment.
const unset = "<unset>"

// testPort is the port the table tests give every worker.
const testPort = 41234

type prepareCase struct {
	name     string
	argv     string // words separated by "|"
	env      []string
	kind     string // the runtime named by the user; Detect(argv) when ""
	heapMB   int    // 384 when zero; -1 for none
	wantArgv string
	wantEnv  map[string]string
	want     Applied
}

func TestPrepareNode(t *testing.T) {
	runPrepareCases(t, []prepareCase{{
		name:     "node direct: flag right after the binary",
		argv:     "node|server.js|--verbose",
		wantArgv: "node|--max-old-space-size=384|server.js|--verbose",
		wantEnv:  map[string]string{"NODE_OPTIONS": unset, "PORT": "41234"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (argv)"},
	}, {
		name:     "node with its own options and app args",
		argv:     "/usr/local/bin/node|-r|dotenv/config|--enable-source-maps|dist/main.js|--port|3000",
		wantArgv: "/usr/local/bin/node|--max-old-space-size=384|-r|dotenv/config|--enable-source-maps|dist/main.js|--port|3000",
		want:     Applied{HeapFlag: "--max-old-space-size=384 (argv)"},
	}, {
		name:     "user flag in argv wins",
		argv:     "node|--enable-source-maps|--max-old-space-size=200|server.js",
		wantArgv: "node|--enable-source-maps|--max-old-space-size=200|server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": unset},
		want:     Applied{UserHeapMB: 200, UserHeapAt: "argv"},
	}, {
		name:     "user flag in argv, underscore spelling",
		argv:     "node|--max_old_space_size=150|server.js",
		wantArgv: "node|--max_old_space_size=150|server.js",
		want:     Applied{UserHeapMB: 150, UserHeapAt: "argv"},
	}, {
		name:     "user flag in argv, value as the next word",
		argv:     "node|--max-old-space-size|200|server.js",
		wantArgv: "node|--max-old-space-size|200|server.js",
		want:     Applied{UserHeapMB: 200, UserHeapAt: "argv"},
	}, {
		name:     "user flag after -e code is still node's",
		argv:     "node|-e|require('./app')|--max-old-space-size=99",
		wantArgv: "node|-e|require('./app')|--max-old-space-size=99",
		want:     Applied{UserHeapMB: 99, UserHeapAt: "argv"},
	}, {
		name:     "flag after the script belongs to the app",
		argv:     "node|server.js|--max-old-space-size=200",
		wantArgv: "node|--max-old-space-size=384|server.js|--max-old-space-size=200",
		want:     Applied{HeapFlag: "--max-old-space-size=384 (argv)"},
	}, {
		name:     "user flag in NODE_OPTIONS wins over argv insertion",
		argv:     "node|server.js",
		env:      []string{"NODE_OPTIONS=--enable-source-maps --max-old-space-size=512"},
		wantArgv: "node|server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--enable-source-maps --max-old-space-size=512"},
		want:     Applied{UserHeapMB: 512, UserHeapAt: "NODE_OPTIONS"},
	}, {
		name:     "user flag in NODE_OPTIONS, quoted, underscore spelling",
		argv:     "npm|start",
		env:      []string{`NODE_OPTIONS="--max_old_space_size=256" --trace-warnings`},
		wantArgv: "npm|start",
		want:     Applied{UserHeapMB: 256, UserHeapAt: "NODE_OPTIONS"},
	}, {
		name:     "argv wins over NODE_OPTIONS when both are set",
		argv:     "node|--max-old-space-size=300|server.js",
		env:      []string{"NODE_OPTIONS=--max-old-space-size=200"},
		wantArgv: "node|--max-old-space-size=300|server.js",
		want:     Applied{UserHeapMB: 300, UserHeapAt: "argv"},
	}, {
		name:     "user set 0, V8's no limit",
		argv:     "node|--max-old-space-size=0|server.js",
		wantArgv: "node|--max-old-space-size=0|server.js",
		want:     Applied{UserHeapMB: 0, UserHeapAt: "argv"},
	}, {
		name:     "npm: NODE_OPTIONS",
		argv:     "npm|start",
		wantArgv: "npm|start",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}, {
		name:     "npx: NODE_OPTIONS merged after the user's options",
		argv:     "npx|next|start",
		env:      []string{"NODE_OPTIONS=--enable-source-maps  --require \"./my hooks.js\""},
		wantArgv: "npx|next|start",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--enable-source-maps  --require \"./my hooks.js\" --max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}, {
		name:     "sh -c: NODE_OPTIONS",
		argv:     "sh|-c|node server.js",
		wantArgv: "sh|-c|node server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}, {
		name:     "sh -c with the user's flag in the script",
		argv:     "sh|-c|exec node --max-old-space-size=100 server.js",
		wantArgv: "sh|-c|exec node --max-old-space-size=100 server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": unset},
		want:     Applied{UserHeapMB: 100, UserHeapAt: "argv"},
	}, {
		name:     "env running node: flag after node",
		argv:     "env|NODE_ENV=production|node|server.js",
		wantArgv: "env|NODE_ENV=production|node|--max-old-space-size=384|server.js",
		want:     Applied{HeapFlag: "--max-old-space-size=384 (argv)"},
	}, {
		name:     "env setting NODE_OPTIONS for npm: merged into env's assignment",
		argv:     "env|NODE_OPTIONS=--enable-source-maps|npm|start",
		env:      []string{"NODE_OPTIONS=--max-old-space-size=999"},
		wantArgv: "env|NODE_OPTIONS=--enable-source-maps --max-old-space-size=384|npm|start",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--max-old-space-size=999"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}, {
		name:     "env -i for npm: assignments on env's command line",
		argv:     "env|-i|npm|start",
		wantArgv: "env|-i|NODE_OPTIONS=--max-old-space-size=384|PORT=41234|npm|start",
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}, {
		name:     "env setting PORT: percore's port replaces it",
		argv:     "env|PORT=3000|node|server.js",
		wantArgv: "env|PORT=41234|node|--max-old-space-size=384|server.js",
		want:     Applied{HeapFlag: "--max-old-space-size=384 (argv)"},
	}, {
		name:     "no heap limit: nothing added",
		argv:     "node|server.js",
		heapMB:   -1,
		wantArgv: "node|server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": unset, "PORT": "41234"},
		want:     Applied{},
	}, {
		name:     "runtime named by the user for a script: NODE_OPTIONS",
		argv:     "./start.sh",
		kind:     "node",
		wantArgv: "./start.sh",
		wantEnv:  map[string]string{"NODE_OPTIONS": "--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (NODE_OPTIONS)"},
	}})
}

func TestPrepareDeno(t *testing.T) {
	const noEnvWarning = "deno run without --allow-env: the app cannot read PORT; pass --allow-env=PORT or use deno serve"
	runPrepareCases(t, []prepareCase{{
		name:     "deno run: --v8-flags right after the subcommand",
		argv:     "deno|run|-A|main.ts|--verbose",
		wantArgv: "deno|run|--v8-flags=--max-old-space-size=384|-A|main.ts|--verbose",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": unset, "NODE_OPTIONS": unset},
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno run: --v8-flags after the script belongs to the app",
		argv:     "deno|run|--allow-env|main.ts|--v8-flags=--max-old-space-size=1",
		wantArgv: "deno|run|--v8-flags=--max-old-space-size=384|--allow-env|main.ts|--v8-flags=--max-old-space-size=1",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno run: the user's heap flag in --v8-flags wins",
		argv:     "deno|run|-A|--v8-flags=--max-old-space-size=200,--stack-size=2000|main.ts",
		wantArgv: "deno|run|-A|--v8-flags=--max-old-space-size=200,--stack-size=2000|main.ts",
		want:     Applied{UserHeapMB: 200, UserHeapAt: "argv"},
	}, {
		name:     "deno run: appended to the user's --v8-flags",
		argv:     "deno|run|-A|--v8-flags=--stack-size=2000|main.ts",
		wantArgv: "deno|run|-A|--v8-flags=--stack-size=2000,--max-old-space-size=384|main.ts",
		want:     Applied{HeapFlag: "--v8-flags=--stack-size=2000,--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno run: the user's DENO_V8_FLAGS wins",
		argv:     "deno|run|-A|main.ts",
		env:      []string{"DENO_V8_FLAGS=--stack-size=2000,--max_old_space_size=640"},
		wantArgv: "deno|run|-A|main.ts",
		want:     Applied{UserHeapMB: 640, UserHeapAt: "DENO_V8_FLAGS"},
	}, {
		name:     "deno run: NODE_OPTIONS is not deno's",
		argv:     "deno|run|-A|main.ts",
		env:      []string{"NODE_OPTIONS=--max-old-space-size=100"},
		wantArgv: "deno|run|--v8-flags=--max-old-space-size=384|-A|main.ts",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno with a global option before run",
		argv:     "deno|-q|run|--allow-env=PORT|main.ts",
		wantArgv: "deno|-q|run|--v8-flags=--max-old-space-size=384|--allow-env=PORT|main.ts",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno given a script without run",
		argv:     "/usr/bin/deno|-A|main.ts",
		wantArgv: "/usr/bin/deno|--v8-flags=--max-old-space-size=384|-A|main.ts",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno run without --allow-env: warned",
		argv:     "deno|run|--allow-net|main.ts",
		wantArgv: "deno|run|--v8-flags=--max-old-space-size=384|--allow-net|main.ts",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)", Warning: noEnvWarning},
	}, {
		name:     "deno run with --allow-env for other names: warned",
		argv:     "deno|run|--allow-env=HOME,PATH|main.ts",
		heapMB:   -1,
		wantArgv: "deno|run|--allow-env=HOME,PATH|main.ts",
		want:     Applied{Warning: noEnvWarning},
	}, {
		name:     "deno run with -NE: not warned",
		argv:     "deno|run|-NE|main.ts",
		heapMB:   -1,
		wantArgv: "deno|run|-NE|main.ts",
	}, {
		name:     "deno run with a wildcard --allow-env: not warned",
		argv:     "deno|run|--allow-env=PO*|main.ts",
		heapMB:   -1,
		wantArgv: "deno|run|--allow-env=PO*|main.ts",
	}, {
		name:     "deno eval",
		argv:     "deno|eval|console.log(1)",
		wantArgv: "deno|eval|--v8-flags=--max-old-space-size=384|console.log(1)",
		want:     Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)"},
	}, {
		name:     "deno serve: heap, port and host after serve",
		argv:     "deno|serve|main.ts",
		wantArgv: "deno|serve|--v8-flags=--max-old-space-size=384|--port=41234|--host=127.0.0.1|main.ts",
		wantEnv:  map[string]string{"PORT": "41234"},
		want: Applied{HeapFlag: "--v8-flags=--max-old-space-size=384 (argv)",
			PortFlag: "--port=41234", HostFlag: "--host=127.0.0.1"},
	}, {
		name:     "deno serve: the user's host is kept",
		argv:     "deno|serve|--host|0.0.0.0|-R|main.ts",
		heapMB:   -1,
		wantArgv: "deno|serve|--port=41234|--host|0.0.0.0|-R|main.ts",
		want:     Applied{PortFlag: "--port=41234"},
	}, {
		name:     "deno serve: the user's port is kept and warned about",
		argv:     "deno|serve|--port=8000|main.ts",
		heapMB:   -1,
		wantArgv: "deno|serve|--host=127.0.0.1|--port=8000|main.ts",
		want: Applied{HostFlag: "--host=127.0.0.1",
			Warning: "deno serve is given its own --port: every worker would listen on that same port; drop it so that percore can give each worker one"},
	}, {
		name:     "deno serve --parallel: warned",
		argv:     "deno|serve|--parallel|main.ts",
		heapMB:   -1,
		wantArgv: "deno|serve|--port=41234|--host=127.0.0.1|--parallel|main.ts",
		want: Applied{PortFlag: "--port=41234", HostFlag: "--host=127.0.0.1",
			Warning: "deno serve --parallel starts its own workers inside each percore worker; drop --parallel"},
	}, {
		name:     "deno task: DENO_V8_FLAGS",
		argv:     "deno|task|start",
		wantArgv: "deno|task|start",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": "--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (DENO_V8_FLAGS)"},
	}, {
		name:     "deno task: merged with the user's DENO_V8_FLAGS",
		argv:     "deno|task|start",
		env:      []string{"DENO_V8_FLAGS=--stack-size=2000"},
		wantArgv: "deno|task|start",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": "--stack-size=2000,--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (DENO_V8_FLAGS)"},
	}, {
		name:     "sh -c running deno: DENO_V8_FLAGS",
		argv:     "sh|-c|deno run -A main.ts",
		wantArgv: "sh|-c|deno run -A main.ts",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": "--max-old-space-size=384"},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (DENO_V8_FLAGS)"},
	}, {
		name:     "sh -c running deno serve: warned, no port for it",
		argv:     "sh|-c|deno serve main.ts",
		wantArgv: "sh|-c|deno serve main.ts",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": "--max-old-space-size=384"},
		want: Applied{HeapFlag: "--max-old-space-size=384 (DENO_V8_FLAGS)",
			Warning: "deno serve inside a shell command gets no --port from percore and listens on its default port 8000; run deno serve directly"},
	}, {
		name:     "npx deno: DENO_V8_FLAGS",
		argv:     "npx|deno|run|-A|main.ts",
		wantArgv: "npx|deno|run|-A|main.ts",
		wantEnv:  map[string]string{"DENO_V8_FLAGS": "--max-old-space-size=384", "NODE_OPTIONS": unset},
		want:     Applied{HeapFlag: "--max-old-space-size=384 (DENO_V8_FLAGS)"},
	}})
}

func TestPrepareBunAndOther(t *testing.T) {
	runPrepareCases(t, []prepareCase{{
		name:     "bun: RAM size for its collector, argv untouched",
		argv:     "bun|server.js",
		wantArgv: "bun|server.js",
		wantEnv:  map[string]string{"BUN_JSC_forceRAMSize": "402653184", "NODE_OPTIONS": unset},
		want:     Applied{HeapFlag: "BUN_JSC_forceRAMSize=402653184 (env)"},
	}, {
		name:     "bun: the user's RAM size wins",
		argv:     "bun|run|start",
		env:      []string{"BUN_JSC_forceRAMSize=268435456"},
		wantArgv: "bun|run|start",
		wantEnv:  map[string]string{"BUN_JSC_forceRAMSize": "268435456"},
		want:     Applied{UserHeapMB: 256, UserHeapAt: "BUN_JSC_forceRAMSize"},
	}, {
		name:     "bun behind env -i: set on env's command line",
		argv:     "env|-i|bunx|server",
		heapMB:   100,
		wantArgv: "env|-i|BUN_JSC_forceRAMSize=104857600|PORT=41234|bunx|server",
		want:     Applied{HeapFlag: "BUN_JSC_forceRAMSize=104857600 (env)"},
	}, {
		name:     "bun: no heap limit",
		argv:     "bun|server.js",
		heapMB:   -1,
		wantArgv: "bun|server.js",
		wantEnv:  map[string]string{"BUN_JSC_forceRAMSize": unset},
	}, {
		name:     "other: nothing but PORT",
		argv:     "python3|-m|http.server",
		wantArgv: "python3|-m|http.server",
		wantEnv:  map[string]string{"PORT": "41234", "NODE_OPTIONS": unset, "DENO_V8_FLAGS": unset, "BUN_JSC_forceRAMSize": unset},
	}, {
		name:     "other named by the user for node: nothing",
		argv:     "node|server.js",
		kind:     "other",
		wantArgv: "node|server.js",
		wantEnv:  map[string]string{"NODE_OPTIONS": unset},
	}})
}

// runPrepareCases runs Prepare on each case and checks its argv, its env,
// what it reports, and that its inputs are left as they were.
func runPrepareCases(t *testing.T, cases []prepareCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Worker{Argv: splitArgs(tc.argv), Env: append([]string{"PATH=/usr/bin", "PORT=41234"}, tc.env...)}
			argvBefore, envBefore := slices.Clone(in.Argv), slices.Clone(in.Env)
			got, applied, err := Prepare(in, tc.options(t, in.Argv))
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !slices.Equal(in.Argv, argvBefore) || !slices.Equal(in.Env, envBefore) {
				t.Errorf("Prepare changed its input: argv %q env %q", in.Argv, in.Env)
			}
			if want := splitArgs(tc.wantArgv); !slices.Equal(got.Argv, want) {
				t.Errorf("argv\n got %q\nwant %q", got.Argv, want)
			}
			for name, want := range tc.wantEnv {
				checkEnv(t, got.Env, name, want)
			}
			if applied != tc.want {
				t.Errorf("applied\n got %+v\nwant %+v", applied, tc.want)
			}
		})
	}
}

// options returns the case's options for argv.
func (tc prepareCase) options(t *testing.T, argv []string) Options {
	t.Helper()
	o := Options{Runtime: Detect(argv), HeapMB: tc.heapMB, Port: testPort}
	if tc.kind != "" {
		rt, err := Default().Lookup(tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		o.Runtime = rt
	}
	switch tc.heapMB {
	case 0:
		o.HeapMB = 384
	case -1:
		o.HeapMB = 0
	}
	return o
}

// checkEnv checks that env holds name=want, or no name when want is unset.
func checkEnv(t *testing.T, env []string, name, want string) {
	t.Helper()
	got, ok := lookupEnv(env, name)
	switch {
	case want == unset && ok:
		t.Errorf("env %s = %q, want it unset", name, got)
	case want != unset && got != want:
		t.Errorf("env %s = %q (set %v), want %q", name, got, ok, want)
	}
}

func TestPrepareRunsDenoNamedByTheUser(t *testing.T) {
	got, applied, err := Prepare(Worker{Argv: []string{"./start.sh"}}, Options{Runtime: Deno(), HeapMB: 200})
	if err != nil {
		t.Fatal(err)
	}
	checkEnv(t, got.Env, "DENO_V8_FLAGS", "--max-old-space-size=200")
	if applied.HeapFlag != "--max-old-space-size=200 (DENO_V8_FLAGS)" {
		t.Errorf("HeapFlag = %q", applied.HeapFlag)
	}
}

func TestPrepareErrors(t *testing.T) {
	tests := []struct {
		name string
		w    Worker
		o    Options
		want string
	}{
		{"empty command", Worker{}, Options{Runtime: Node()}, "prepare worker: empty command"},
		{"negative heap", Worker{Argv: []string{"node"}}, Options{Runtime: Node(), HeapMB: -1}, "prepare worker: heap limit -1 MiB is negative"},
		{"port too high", Worker{Argv: []string{"node"}}, Options{Runtime: Node(), Port: 70000}, "prepare worker: port 70000 is out of range 0-65535"},
		{"NODE_OPTIONS unterminated", Worker{Argv: []string{"npm", "start"}, Env: []string{`NODE_OPTIONS="--x`}},
			Options{Runtime: Node(), HeapMB: 100}, `prepare node worker: read NODE_OPTIONS "\"--x": unterminated string`},
		{"NODE_OPTIONS bad escape", Worker{Argv: []string{"node", "a.js"}, Env: []string{`NODE_OPTIONS="\`}},
			Options{Runtime: Node(), HeapMB: 100}, `prepare node worker: read NODE_OPTIONS "\"\\": invalid escape`},
		{"bun RAM size not a number", Worker{Argv: []string{"bun", "a.js"}, Env: []string{"BUN_JSC_forceRAMSize=1g"}},
			Options{Runtime: Bun(), HeapMB: 100}, `prepare bun worker: read BUN_JSC_forceRAMSize="1g": not a number of bytes`},
	}
	for _, tt := range tests {
		_, _, err := Prepare(tt.w, tt.o)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestPrepareReturnsFreshSlices(t *testing.T) {
	in := Worker{Argv: []string{"bun", "server.js"}, Env: make([]string, 1, 10)}
	in.Env[0] = "PORT=1"
	out, _, err := Prepare(in, Options{Runtime: Bun(), Port: 2})
	if err != nil {
		t.Fatal(err)
	}
	out.Argv[0], out.Env[0] = "changed", "changed"
	if in.Argv[0] != "bun" || in.Env[0] != "PORT=1" || len(in.Env[:cap(in.Env)]) != 10 || in.Env[:2][1] != "" {
		t.Errorf("the output shares memory with the input: argv %q env %q", in.Argv, in.Env[:2])
	}
}

// TestPrepareSemiSpace checks that the semi-space size goes with the heap
// limit wherever that goes, and that a semi-space size of the user's wins.
func TestPrepareSemiSpace(t *testing.T) {
	cases := []struct {
		name     string
		argv     string
		env      []string
		wantArgv string
		wantEnv  map[string]string
		want     string
	}{
		{"node", "node|server.js", nil, "node|--max-old-space-size=147|--max-semi-space-size=1|server.js", nil,
			"--max-old-space-size=147 --max-semi-space-size=1 (argv)"},
		{"npm", "npm|start", []string{"NODE_OPTIONS=--enable-source-maps"}, "npm|start",
			map[string]string{"NODE_OPTIONS": "--enable-source-maps --max-old-space-size=147 --max-semi-space-size=1"},
			"--max-old-space-size=147 --max-semi-space-size=1 (NODE_OPTIONS)"},
		{"node, user's semi-space in argv", "node|--max_semi_space_size|8|server.js", nil,
			"node|--max-old-space-size=147|--max_semi_space_size|8|server.js", nil, "--max-old-space-size=147 (argv)"},
		{"node, user's semi-space in NODE_OPTIONS", "node|server.js", []string{"NODE_OPTIONS=--max-semi-space-size=4"},
			"node|--max-old-space-size=147|server.js", nil, "--max-old-space-size=147 (argv)"},
		{"deno run", "deno|run|-A|main.ts", nil, "deno|run|--v8-flags=--max-old-space-size=147,--max-semi-space-size=1|-A|main.ts", nil,
			"--v8-flags=--max-old-space-size=147,--max-semi-space-size=1 (argv)"},
		{"deno run, the user's --v8-flags", "deno|run|--v8-flags=--stack-size=2000|main.ts", nil,
			"deno|run|--v8-flags=--stack-size=2000,--max-old-space-size=147,--max-semi-space-size=1|main.ts", nil,
			"--v8-flags=--stack-size=2000,--max-old-space-size=147,--max-semi-space-size=1 (argv)"},
		{"deno run, the user's semi-space", "deno|run|--v8-flags=--max-semi-space-size=8|main.ts", nil,
			"deno|run|--v8-flags=--max-semi-space-size=8,--max-old-space-size=147|main.ts", nil,
			"--v8-flags=--max-semi-space-size=8,--max-old-space-size=147 (argv)"},
		{"deno task", "deno|task|start", []string{"DENO_V8_FLAGS=--stack-size=2000"}, "deno|task|start",
			map[string]string{"DENO_V8_FLAGS": "--stack-size=2000,--max-old-space-size=147,--max-semi-space-size=1"},
			"--max-old-space-size=147,--max-semi-space-size=1 (DENO_V8_FLAGS)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			argv := splitArgs(tc.argv)
			got, applied, err := Prepare(Worker{Argv: argv, Env: tc.env}, Options{Runtime: Detect(argv), HeapMB: 147, SemiSpaceMB: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := splitArgs(tc.wantArgv); !slices.Equal(got.Argv, want) {
				t.Errorf("argv\n got %q\nwant %q", got.Argv, want)
			}
			for name, want := range tc.wantEnv {
				checkEnv(t, got.Env, name, want)
			}
			if applied.HeapFlag != tc.want {
				t.Errorf("HeapFlag = %q, want %q", applied.HeapFlag, tc.want)
			}
		})
	}
}
