package jsruntime

import (
	"slices"
	"testing"
)

func TestSplitNodeOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"--a --b", []string{"--a", "--b"}},
		{"  --a   --b  ", []string{"--a", "--b"}},
		{`--require "./my hooks.js"`, []string{"--require", "./my hooks.js"}},
		{`--max-old-space-size="200"`, []string{"--max-old-space-size=200"}},
		{`"--title=a \"b\" c"`, []string{`--title=a "b" c`}},
		{`--a\ b`, []string{`--a\`, "b"}},  // a backslash escapes only inside quotes
		{"--a\t--b", []string{"--a\t--b"}}, // only spaces separate
		{`""`, nil},
	}
	for _, tt := range tests {
		got, err := splitNodeOptions(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitNodeOptions(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNodeOptionsHeap(t *testing.T) {
	tests := []struct {
		in    string
		mb    int
		found bool
	}{
		{"--max-old-space-size=200", 200, true},
		{"--max_old_space_size=200", 200, true},
		{"-max-old-space-size=200", 200, true},
		{"--max-old-space-size=+200", 200, true},
		{"--max-old-space-size 200", 200, true},
		{"--max-old-space-size=100 --max-old-space-size=300", 300, true},
		{"--max-old-space-size=300 --max-old-space-size=oops", 300, true},
		{"--max-old-space-size=0", 0, true},
		{"--max-old-space-size=200MB", 0, false},
		{"--max-old-space-size=0x100", 0, false},
		{"--max-old-space-size-percentage=50", 0, false},
		{"--max-semi-space-size=64", 0, false},
		{"--max-old-space-size --inspect", 0, false},
		{"--foo=--max-old-space-size=200", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := nodeOptionsHeap(tt.in)
		if err != nil || got != (heapSetting{tt.mb, tt.found}) {
			t.Errorf("nodeOptionsHeap(%q) = %+v, %v; want %d %v", tt.in, got, err, tt.mb, tt.found)
		}
	}
}

func TestNodeScriptIndex(t *testing.T) {
	tests := []struct {
		args string
		want int
	}{
		{"server.js", 0},
		{"--inspect|server.js|--x", 1},
		{"-r|dotenv/config|--import|tsx|server.ts", 4},
		{"--require=dotenv/config|server.js", 1},
		{"-e|code|--max-old-space-size=1", 3},
		{"--|server.js", 0},
		{"-", 0},
		{"--max-old-space-size|100|app.js", 2},
		{"", 0},
	}
	for _, tt := range tests {
		if got := nodeScriptIndex(splitArgs(tt.args)); got != tt.want {
			t.Errorf("nodeScriptIndex(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}

func TestAppendV8Flag(t *testing.T) {
	for _, tt := range [][3]string{
		{"", "--b", "--b"},
		{"--a", "--b", "--a,--b"},
		{"--a,", "--b", "--a,--b"},
	} {
		if got := appendV8Flag(tt[0], tt[1]); got != tt[2] {
			t.Errorf("appendV8Flag(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
}
