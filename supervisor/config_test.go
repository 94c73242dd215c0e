package supervisor

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noLauncher is a Launcher that starts nothing: a config's checks never
// start a process.
type noLauncher struct{}

func (noLauncher) Start(*exec.Cmd) (int, <-chan Exit, error) {
	return 0, nil, errors.New("no launcher")
}

// validConfig is the least Config New accepts.
func validConfig() Config {
	return Config{Command: []string{"app"}, Workers: 1, Launcher: noLauncher{}, Router: newRecordingRouter(),
		Output: NewOutput(OutputConfig{})}
}

// TestNewRejectsBadConfig: New says what is wrong with a config, in words
// that name the field.
func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no command", func(c *Config) { c.Command = nil }, "supervisor config: no command to run"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "supervisor config: worker count 0: at least 1 worker is needed"},
		{"negative workers", func(c *Config) { c.Workers = -3 }, "worker count -3"},
		{"no launcher", func(c *Config) { c.Launcher = nil }, "launcher, router and output are required"},
		{"no router", func(c *Config) { c.Router = nil }, "launcher, router and output are required"},
		{"no output", func(c *Config) { c.Output = nil }, "launcher, router and output are required"},
	} {
		cfg := validConfig()
		c.change(&cfg)
		sup, err := New(cfg)
		if err == nil || sup != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, %v; want an error with %q", c.name, sup, err, c.want)
		}
	}
	if _, err := New(validConfig()); err != nil {
		t.Errorf("New(a valid config) = %v", err)
	}
}

// TestConfigDefaults: what a zero field becomes, and that a set field is
// kept.
func TestConfigDefaults(t *testing.T) {
	cfg := validConfig()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ReadyTimeout", cfg.ReadyTimeout, DefaultReadyTimeout},
		{"BackoffMin", cfg.BackoffMin, DefaultBackoffMin},
		{"BackoffMax", cfg.BackoffMax, DefaultBackoffMax},
		{"StableAfter", cfg.StableAfter, DefaultStableAfter},
		{"MinUptime", cfg.MinUptime, DefaultMinUptime},
		{"ShutdownTimeout", cfg.ShutdownTimeout, 10 * time.Second},
		{"SampleInterval", cfg.SampleInterval, time.Second},
		{"Guard.Every", cfg.Guard.Every, time.Second},
		{"Guard.Near", cfg.Guard.Near, DefaultGuardNear},
		{"Guard.Drain", cfg.Guard.Drain, DefaultGuardDrain},
		{"Guard.Loop", cfg.Guard.Loop, DefaultGuardLoop},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if cfg.StopSignal != syscall.SIGTERM || cfg.MaxBootFailures != DefaultMaxBootFailures || cfg.Logger == nil {
		t.Errorf("StopSignal %s, MaxBootFailures %d, Logger %v", cfg.StopSignal, cfg.MaxBootFailures, cfg.Logger)
	}

	set := validConfig()
	set.ReadyTimeout, set.BackoffMin, set.StopSignal, set.MaxBootFailures = time.Minute, time.Millisecond, syscall.SIGINT, 2
	set.SampleInterval, set.ShutdownTimeout, set.BackoffMax = 50*time.Millisecond, -time.Second, 0
	if err := set.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if set.ReadyTimeout != time.Minute || set.BackoffMin != time.Millisecond || set.StopSignal != syscall.SIGINT ||
		set.MaxBootFailures != 2 || set.Guard.Every != 50*time.Millisecond || set.Guard.Near != 50*time.Millisecond ||
		set.ShutdownTimeout != 10*time.Second || set.BackoffMax != DefaultBackoffMax {
		t.Errorf("a set field was not kept, or a negative one not defaulted: %+v", set)
	}
}

// TestGuardDefaults: the memory guard's hard limit is never under its
// budget, and it samples near the budget no slower than it samples at all.
func TestGuardDefaults(t *testing.T) {
	for _, c := range []struct {
		in   Guard
		hard uint64
		near time.Duration
	}{
		{Guard{Every: time.Second}, 0, DefaultGuardNear},                           // off: nothing to check
		{Guard{Budget: 100, Hard: 50, Every: time.Second}, 100, DefaultGuardNear},  // raised to the budget
		{Guard{Budget: 100, Hard: 150, Every: time.Second}, 150, DefaultGuardNear}, // kept
		{Guard{Budget: 100, Hard: 150, Every: 20 * time.Millisecond}, 150, 20 * time.Millisecond},
		{Guard{Budget: 100, Hard: 150, Every: time.Second, Near: 300 * time.Millisecond}, 150, 300 * time.Millisecond},
	} {
		g := c.in
		g.setDefaults()
		if g.Hard != c.hard || g.Near != c.near || g.Drain != DefaultGuardDrain || g.Loop != DefaultGuardLoop {
			t.Errorf("%+v.setDefaults() = %+v; want Hard %d, Near %s", c.in, g, c.hard, c.near)
		}
	}
}
