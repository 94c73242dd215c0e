package jsruntime

import (
	"slices"
	"strings"
	"testing"
)

// fuzzHeapMB is the limit the fuzz targets ask Prepare for.
const fuzzHeapMB = 300

// FuzzUserHeap checks the scanning of NODE_OPTIONS and of node's options
// for the user's own heap limit. args holds node's arguments separated by
// NUL bytes.
func FuzzUserHeap(f *testing.F) {
	for _, seed := range [][2]string{
		{"", "server.js"},
		{"--max-old-space-size=200", "server.js"},
		{`"--max_old_space_size=1" --enable-source-maps`, "-r\x00dotenv/config\x00server.js"},
		{"--max-old-space-size", "--max-old-space-size\x00300\x00app.js"},
		{`--require "./a b.js" --title="x \"y\""`, "-e\x00code\x00--max-old-space-size=5"},
		{`"unterminated`, "app.js\x00--max-old-space-size=7"},
		{"--max-old-space-size=12MB  ", "--\x00app.js"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, nodeOptions, args string) {
		checkNodeOptionsMerge(t, nodeOptions)
		checkNodeArgvInsert(t, strings.Split(args, "\x00"))
	})
}

// checkNodeOptionsMerge checks that a NODE_OPTIONS value without a heap
// limit of the user's gets exactly one more option, percore's, which node
// then reads as the limit.
func checkNodeOptionsMerge(t *testing.T, nodeOptions string) {
	options, err := splitNodeOptions(nodeOptions)
	if err != nil {
		return // node refuses to start with it, and so does Prepare
	}
	user := scanHeapFlags(options, true)
	if user.found {
		if user.mb < 0 {
			t.Fatalf("NODE_OPTIONS %q: negative limit %d", nodeOptions, user.mb)
		}
		return
	}
	merged := appendNodeOption(nodeOptions, heapFlag(fuzzHeapMB))
	got, err := splitNodeOptions(merged)
	if err != nil {
		t.Fatalf("merged NODE_OPTIONS %q: %v", merged, err)
	}
	if want := append(slices.Clone(options), heapFlag(fuzzHeapMB)); !slices.Equal(got, want) {
		t.Fatalf("merged NODE_OPTIONS %q splits into %q, want %q", merged, got, want)
	}
	if s := scanHeapFlags(got, true); s != (heapSetting{fuzzHeapMB, true}) {
		t.Fatalf("merged NODE_OPTIONS %q sets %+v, want %d", merged, s, fuzzHeapMB)
	}
}

// checkNodeArgvInsert checks that Prepare either keeps the user's limit
// among node's options or puts percore's right after node, where node reads
// it and the app's arguments stay as they were.
func checkNodeArgvInsert(t *testing.T, args []string) {
	argv := append([]string{"node"}, args...)
	out, applied, err := Prepare(Worker{Argv: argv}, Options{Runtime: Node(), HeapMB: fuzzHeapMB})
	if err != nil {
		t.Fatalf("Prepare(%q): %v", argv, err)
	}
	if applied.UserHeapAt != "" {
		if !slices.Equal(out.Argv, argv) || applied.HeapFlag != "" {
			t.Fatalf("Prepare(%q) changed argv to %q although the user set %d", argv, out.Argv, applied.UserHeapMB)
		}
		return
	}
	want := append([]string{"node", heapFlag(fuzzHeapMB)}, args...)
	if !slices.Equal(out.Argv, want) {
		t.Fatalf("Prepare(%q) = %q, want %q", argv, out.Argv, want)
	}
	if s := nodeArgvHeap(out.Argv[1:]); s != (heapSetting{fuzzHeapMB, true}) {
		t.Fatalf("prepared argv %q sets %+v, want %d", out.Argv, s, fuzzHeapMB)
	}
}

// FuzzPrepare runs Prepare on any command line for every runtime: it must
// not panic, must only add words, and must leave its input alone. argv
// holds the words separated by NUL bytes.
func FuzzPrepare(f *testing.F) {
	for _, seed := range []string{
		"node\x00server.js",
		"env\x00-i\x00-u\x00PORT\x00A=1\x00env\x00npm\x00start",
		"sh\x00-c\x00deno serve --port 1 'main.ts'; bun x",
		"deno\x00-q\x00serve\x00--v8-flags=\x00--host\x00x.ts",
		"npx\x00-c\x00env -S 'node a' \"",
		"env\x00-S\x00bun --smol\x00NODE_OPTIONS=\"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		argv := strings.Split(joined, "\x00")
		before := slices.Clone(argv)
		for _, kind := range append(Default().Runtimes(), Other()) {
			out, _, err := Prepare(Worker{Argv: argv}, Options{Runtime: kind, HeapMB: fuzzHeapMB, Port: 8080})
			if !slices.Equal(argv, before) {
				t.Fatalf("Prepare(%q, %v) changed its input", before, kind)
			}
			if err == nil && len(out.Argv) < len(argv) {
				t.Fatalf("Prepare(%q, %v) dropped words: %q", argv, kind, out.Argv)
			}
		}
	})
}
