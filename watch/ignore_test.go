package watch

import (
	"path/filepath"
	"testing"
)

func TestIgnored(t *testing.T) {
	root := "/app"
	ig, err := newIgnorer([]string{"*.log", "src/generated", "fixtures/"}, []string{"/app/dist"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"server.js", false, false},
		{"src/app.js", false, false},
		{".env", false, false},
		{"node_modules", true, true},
		{"node_modules/express/index.js", false, true},
		{"lib/node_modules/x.js", false, true},
		{".git", true, true},
		{".git/HEAD", false, true},
		{".next/cache/x", false, true},
		{"coverage/lcov.info", false, true},
		{"build", true, true},
		{"src/.app.js.swp", false, true},
		{"src/app.js~", false, true},
		{"src/4913", false, true},
		{"src/.#app.js", false, true},
		{"server.log", false, true},
		{"src/generated/a.js", false, true},
		{"src/generated", true, true},
		{"src/generatedx.js", false, false},
		{"fixtures/a.json", false, true},
		{"dist/server.js", false, false}, // kept: the app's script is there
		{"dist/node_modules/x.js", false, true},
		{"lib/dist/x.js", false, true},
	} {
		if got := ig.ignored(root, filepath.Join(root, c.path), c.isDir); got != c.want {
			t.Errorf("ignored(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
		}
	}
	if _, err := newIgnorer([]string{"[x"}, nil); err == nil {
		t.Error("a bad pattern must be refused")
	}
}
