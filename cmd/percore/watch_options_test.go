package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWatchOptions(t *testing.T) {
	for _, c := range []struct {
		args  []string
		env   map[string]string
		on    bool
		paths []string
	}{
		{[]string{"node", "app.js"}, nil, false, nil},
		{[]string{"--watch", "node", "app.js"}, nil, true, nil},
		{[]string{"--watch=src,lib", "--", "node", "app.js"}, nil, true, []string{"src", "lib"}},
		{[]string{"node", "app.js"}, map[string]string{"PERCORE_WATCH": "1"}, true, nil},
		{[]string{"node", "app.js"}, map[string]string{"PERCORE_WATCH": "src, server.js"}, true, []string{"src", "server.js"}},
		{[]string{"--watch=off", "node", "app.js"}, map[string]string{"PERCORE_WATCH": "1"}, false, nil},
	} {
		cfg, err := parseConfig(c.args, c.env)
		if err != nil {
			t.Fatalf("%q %v: %v", c.args, c.env, err)
		}
		if cfg.Watch.On != c.on || !slices.Equal(cfg.Watch.Paths, c.paths) {
			t.Errorf("%q %v: watch %+v, want on=%v paths=%q", c.args, c.env, cfg.Watch, c.on, c.paths)
		}
		if cfg.Command[0] != "node" {
			t.Errorf("%q: command %q", c.args, cfg.Command)
		}
	}
	cfg, err := parseConfig([]string{"--watch-ignore", "*.log,src/gen", "--watch-ignore=tmp2", "--watch-debounce", "1s", "node"}, nil)
	if err != nil || !slices.Equal(cfg.Watch.Ignore, []string{"*.log", "src/gen", "tmp2"}) || cfg.Watch.Debounce.String() != "1s" {
		t.Errorf("watch settings %+v, %v", cfg.Watch, err)
	}
	if _, err := parseConfig([]string{"--watch-ignore", "[x", "node"}, nil); err == nil {
		t.Error("a bad pattern must be refused")
	}
}

func TestAppDir(t *testing.T) {
	base := t.TempDir()
	cwd := filepath.Join(base, "work")
	app := filepath.Join(base, "app")
	for _, d := range []string{filepath.Join(cwd, "src"), filepath.Join(cwd, "proj", "dist"), filepath.Join(app, "dist")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(cwd, "proj", "package.json"), filepath.Join(app, "deno.json")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ script, want, keep string }{
		{"", cwd, ""},
		{"src/server.js", cwd, filepath.Join(cwd, "src")},
		{"server.js", cwd, cwd},
		{"proj/dist/server.js", filepath.Join(cwd, "proj"), filepath.Join(cwd, "proj", "dist")},
		{filepath.Join(app, "dist", "main.ts"), app, filepath.Join(app, "dist")},
		{filepath.Join(base, "lone", "x.js"), filepath.Join(base, "lone"), filepath.Join(base, "lone")},
	} {
		dir, keep := appDir(c.script, cwd)
		if dir != c.want || (c.keep != "" && !slices.Equal(keep, []string{c.keep})) {
			t.Errorf("appDir(%q) = %q, %q; want %q, %q", c.script, dir, keep, c.want, c.keep)
		}
	}
}
