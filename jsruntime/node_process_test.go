//go:build unix

package jsruntime

import (
	"testing"
)

// nodeHeapScript prints node's heap limit and PORT as runtimeOutput.
const nodeHeapScript = `const { getHeapStatistics } = require("node:v8");
console.log(JSON.stringify({
  limitMiB: getHeapStatistics().heap_size_limit / 1048576,
  port: process.env.PORT,
  sourceMaps: process.sourceMapsEnabled,
}));
`

// nodeHeapMB is the limit the node process tests ask for. V8 reports it in
// heap_size_limit plus its young generation (48 MiB on node 20).
const nodeHeapMB = 300

func TestNodeProcessHeapLimit(t *testing.T) {
	node := pathBinary(t, "node")
	dir := writeFiles(t, map[string]string{"heap.js": nodeHeapScript})
	port := freePort(t)
	env := baseEnv(port)
	defaultLimit := run(t, Worker{Argv: []string{node, "heap.js"}, Env: env}, dir).LimitMiB

	tests := []struct {
		name       string
		argv       []string
		env        []string
		heapFlag   string
		low, high  float64
		sourceMaps bool // whether the user's --enable-source-maps must reach node
	}{
		{"node run directly", []string{node, "heap.js", "--app-arg"}, nil,
			"--max-old-space-size=300 (argv)", nodeHeapMB, 400, false},
		{"node behind sh -c", []string{"sh", "-c", node + " heap.js"}, nil,
			"--max-old-space-size=300 (NODE_OPTIONS)", nodeHeapMB, 400, false},
		{"node behind env", []string{"env", "APP=1", node, "heap.js"}, nil,
			"--max-old-space-size=300 (argv)", nodeHeapMB, 400, false},
		{"NODE_OPTIONS merged with the user's", []string{"sh", "-c", node + " heap.js"},
			[]string{"NODE_OPTIONS=--enable-source-maps"},
			"--max-old-space-size=300 (NODE_OPTIONS)", nodeHeapMB, 400, true},
		{"the user's flag in argv is kept", []string{node, "--max-old-space-size=200", "heap.js"}, nil,
			"", 200, nodeHeapMB, false},
		{"the user's NODE_OPTIONS is kept", []string{node, "heap.js"},
			[]string{"NODE_OPTIONS=--max-old-space-size=200"},
			"", 200, nodeHeapMB, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Worker{Argv: tt.argv, Env: append(baseEnv(port), tt.env...)}
			prepared, applied := prepare(t, w, Options{Runtime: Detect(tt.argv), HeapMB: nodeHeapMB, Port: port})
			if applied.HeapFlag != tt.heapFlag {
				t.Errorf("HeapFlag = %q, want %q", applied.HeapFlag, tt.heapFlag)
			}
			got := run(t, prepared, dir)
			t.Logf("heap_size_limit %.0f MiB (default %.0f MiB)", got.LimitMiB, defaultLimit)
			checkLimit(t, tt.name, got.LimitMiB, tt.low, tt.high)
			if got.LimitMiB == defaultLimit {
				t.Errorf("heap_size_limit is node's default %.0f MiB", defaultLimit)
			}
			if got.Port != itoa(port) {
				t.Errorf("PORT = %q, want %d", got.Port, port)
			}
			if tt.sourceMaps && !got.SourceMaps {
				t.Error("the user's --enable-source-maps in NODE_OPTIONS was lost")
			}
		})
	}
}

func TestNodeProcessHeapLimitThroughNpmRun(t *testing.T) {
	node := pathBinary(t, "node")
	npm := pathBinary(t, "npm")
	dir := writeFiles(t, map[string]string{
		"heap.js":      nodeHeapScript,
		"package.json": `{"name": "heap", "private": true, "scripts": {"start": "node heap.js"}}`,
	})
	port := freePort(t)
	argv := []string{npm, "run", "--silent", "start"}
	w := Worker{Argv: argv, Env: baseEnv(port)}
	prepared, applied := prepare(t, w, Options{Runtime: Detect(argv), HeapMB: nodeHeapMB, Port: port})
	if applied.HeapFlag != "--max-old-space-size=300 (NODE_OPTIONS)" {
		t.Errorf("HeapFlag = %q, want it in NODE_OPTIONS", applied.HeapFlag)
	}
	got := run(t, prepared, dir)
	defaultLimit := run(t, Worker{Argv: []string{node, "heap.js"}, Env: baseEnv(port)}, dir).LimitMiB
	t.Logf("through npm run: heap_size_limit %.0f MiB (default %.0f MiB)", got.LimitMiB, defaultLimit)
	checkLimit(t, "npm run start", got.LimitMiB, nodeHeapMB, 400)
	if got.Port != itoa(port) {
		t.Errorf("PORT = %q, want %d", got.Port, port)
	}
}
