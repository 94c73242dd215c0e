package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/percore/percore/supervisor"
	"github.com/percore/percore/watch"
)

// watchSettings are the --watch options.
type watchSettings struct {
	On       bool
	Paths    []string // nil: the app's directory
	Ignore   []string
	Debounce time.Duration
}

func watchOptions() []option {
	return []option{
		{name: "watch", isBool: true, def: "off",
			usage: "for development: reload (rolling, the old workers serve until the new ones are ready and past their --probation) when a file of the app changes; --watch watches the app's directory, --watch=PATH,... these files and directories",
			doc:   "operations.md#developing-with---watch",
			set:   setWatch},
		{name: "watch-ignore", value: "GLOB,...", def: "node_modules, dot-directories, dist, build, coverage, out, tmp, editor temporary files",
			usage: "more names (*.log) or paths from a watched directory (src/generated) that --watch ignores",
			doc:   "operations.md#developing-with---watch", set: setWatchIgnore},
		{name: "watch-debounce", value: "DURATION", def: watch.DefaultDebounce.String(),
			usage: "how long --watch waits after a change for more before it reloads",
			doc:   "operations.md#developing-with---watch", set: durationSetter(func(c *config) *time.Duration { return &c.Watch.Debounce })},
	}
}

func setWatch(c *config, v string) error {
	switch strings.ToLower(v) {
	case "true", "1", "on", "yes":
		c.Watch.On, c.Watch.Paths = true, nil
	case "false", "0", "off", "no":
		c.Watch.On, c.Watch.Paths = false, nil
	default:
		paths := splitList(v)
		if len(paths) == 0 {
			return errors.New("want PATH,... or nothing after --watch")
		}
		c.Watch.On, c.Watch.Paths = true, paths
	}
	return nil
}

func setWatchIgnore(c *config, v string) error {
	globs := splitList(v)
	for _, g := range globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return errors.New("bad pattern " + g + ": " + err.Error())
		}
	}
	c.Watch.Ignore = append(c.Watch.Ignore, globs...)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// appDir is the directory --watch watches by default: the nearest
// directory holding the script, or above it, with a package.json (or
// deno.json, deno.jsonc, bunfig.toml), looking no higher than the working
// directory when the script is under it; else the working directory when
// the script is under it, else the script's directory. Without a script
// that can be seen (npm start), it is the working directory. keep is the
// script's directory, watched even when ignored names (dist, build) lead to it.
func appDir(script, cwd string) (dir string, keep []string) {
	if script == "" {
		return cwd, nil
	}
	if !filepath.IsAbs(script) {
		script = filepath.Join(cwd, script)
	}
	scriptDir := filepath.Dir(script)
	under := scriptDir == cwd || strings.HasPrefix(scriptDir, cwd+string(filepath.Separator))
	manifests := []string{"package.json", "deno.json", "deno.jsonc", "bunfig.toml"}
	for d := scriptDir; ; d = filepath.Dir(d) {
		for _, m := range manifests {
			if _, err := os.Stat(filepath.Join(d, m)); err == nil {
				return d, []string{scriptDir}
			}
		}
		if (under && d == cwd) || d == filepath.Dir(d) {
			break
		}
	}
	if under {
		return cwd, []string{scriptDir}
	}
	return scriptDir, []string{scriptDir}
}

// ownWatch returns the runtime's own watch flag when the command has one.
func ownWatch(argv []string) string {
	for _, a := range argv {
		if a == "--watch" || a == "--hot" || strings.HasPrefix(a, "--watch=") || strings.HasPrefix(a, "--watch-path") {
			return a
		}
	}
	return ""
}

// newWatcher starts watching the app's files for cfg.
func newWatcher(cfg *config, sup *supervisor.Supervisor, log hclog.Logger) (*watch.Watcher, error) {
	paths, keep := cfg.Watch.Paths, []string(nil)
	if len(paths) == 0 {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		var dir string
		dir, keep = appDir(cfg.Runtimes.Script(cfg.Command), cwd)
		paths = []string{dir}
	}
	if flag := ownWatch(cfg.Command); flag != "" {
		log.Warn("the command has its own "+flag+": each worker would restart itself on a change, at once and "+
			"without a rolling reload; drop it, --watch does the reloading", "flag", flag)
	}
	return watch.New(watch.Config{
		Paths:    paths,
		Ignore:   cfg.Watch.Ignore,
		Keep:     keep,
		Debounce: cfg.Watch.Debounce,
		Logger:   log,
		Reloader: watch.ReloaderFunc(func(ctx context.Context) (watch.Result, error) {
			st, err := sup.ReloadWait(ctx)
			return watch.Result{Failed: st.State == "failed", Replaced: st.Replaced, Took: st.Took()}, err
		}),
	})
}
