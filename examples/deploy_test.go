package examples_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/percore/percore/proxy"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// percoreDefaults are the defaults the deployment files rely on, as the
// built binary's --help states them.
type percoreDefaults struct {
	PublicPort      int
	AdminPort       int
	ShutdownTimeout time.Duration
}

// probePaths are the admin listener's paths a platform may probe.
var probePaths = []string{"/healthz", "/livez", "/readyz"}

// readDefaults runs `percore --help` and reads the defaults of --port,
// --admin and --shutdown-timeout from it.
func readDefaults(t *testing.T) percoreDefaults {
	t.Helper()
	out, err := exec.Command(percoreBin, "--help").Output()
	if err != nil {
		t.Fatalf("percore --help: %v", err)
	}
	entries := helpEntries(string(out))
	field := func(flag, pattern string) string {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(entries[flag])
		if m == nil {
			t.Fatalf("percore --help: the --%s entry %q does not match %s", flag, entries[flag], pattern)
		}
		return m[1]
	}
	var d percoreDefaults
	d.PublicPort, _ = strconv.Atoi(field("port", `default .*?(\d+)\s*$`))
	d.AdminPort, _ = strconv.Atoi(field("admin", `default [^\s:]*:(\d+)\s*$`))
	if d.ShutdownTimeout, err = time.ParseDuration(field("shutdown-timeout", `default (\S+)\s*$`)); err != nil {
		t.Fatalf("percore --help: --shutdown-timeout default: %v", err)
	}
	return d
}

// helpEntries splits percore's help into one entry per flag, keyed by the
// flag's name: its line and the indented lines below it.
func helpEntries(help string) map[string]string {
	entries := map[string]string{}
	name := ""
	for _, line := range strings.Split(help, "\n") {
		if rest, ok := strings.CutPrefix(line, "  --"); ok {
			name, _, _ = strings.Cut(rest, " ")
			entries[name] = line
			continue
		}
		if name != "" && strings.HasPrefix(line, "      ") {
			entries[name] += "\n" + line
			continue
		}
		name = ""
	}
	return entries
}

// flyConfig is the part of fly.toml the example uses. Keys it does not name
// fail the test, which catches misspelt keys.
type flyConfig struct {
	App           string            `toml:"app"`
	PrimaryRegion string            `toml:"primary_region"`
	KillSignal    string            `toml:"kill_signal"`
	KillTimeout   any               `toml:"kill_timeout"` // seconds, or a duration such as "10s"
	SwapSizeMB    int               `toml:"swap_size_mb"`
	Env           map[string]string `toml:"env"`
	HTTPService   struct {
		InternalPort       int  `toml:"internal_port"`
		ForceHTTPS         bool `toml:"force_https"`
		AutoStopMachines   any  `toml:"auto_stop_machines"` // true/false or "off"/"stop"/"suspend"
		AutoStartMachines  bool `toml:"auto_start_machines"`
		MinMachinesRunning int  `toml:"min_machines_running"`
		Concurrency        struct {
			Type      string `toml:"type"`
			SoftLimit int    `toml:"soft_limit"`
			HardLimit int    `toml:"hard_limit"`
		} `toml:"concurrency"`
		Checks []flyCheck `toml:"checks"`
	} `toml:"http_service"`
	Checks  map[string]flyCheck `toml:"checks"`
	Metrics struct {
		Port int    `toml:"port"`
		Path string `toml:"path"`
	} `toml:"metrics"`
	VM []struct {
		CPUKind string `toml:"cpu_kind"`
		CPUs    int    `toml:"cpus"`
		Memory  any    `toml:"memory"` // "1gb" or megabytes
	} `toml:"vm"`
}

type flyCheck struct {
	Type        string `toml:"type"`
	Port        int    `toml:"port"`
	Method      string `toml:"method"`
	Path        string `toml:"path"`
	Interval    string `toml:"interval"`
	Timeout     string `toml:"timeout"`
	GracePeriod string `toml:"grace_period"`
}

// Fly's defaults when fly.toml leaves them out.
const (
	flyDefaultKillTimeout = 5 * time.Second
	flyDefaultKillSignal  = "SIGINT"
)

// TestFlyConfig checks examples/deploy/fly.toml against percore's defaults:
// the service's internal port is percore's public port, the top-level checks
// probe the admin port's paths and include /readyz, Fly's kill_timeout
// outlasts percore's shutdown timeout, and percore accepts the [env] and
// answers the checks' paths with 200.
func TestFlyConfig(t *testing.T) {
	d := readDefaults(t)
	var fly flyConfig
	md, err := toml.DecodeFile(filepath.Join("deploy", "fly.toml"), &fly)
	if err != nil {
		t.Fatal(err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		t.Errorf("fly.toml has keys the test does not know (misspelt? else add them to flyConfig): %v", keys)
	}

	if fly.HTTPService.InternalPort != d.PublicPort {
		t.Errorf("http_service.internal_port = %d, want percore's public port %d", fly.HTTPService.InternalPort, d.PublicPort)
	}
	if len(fly.VM) == 0 || fly.VM[0].CPUs < 1 || fly.VM[0].Memory == nil {
		t.Fatalf("[[vm]] = %+v, want cpus and memory, which percore sizes the workers by", fly.VM)
	}
	checkFlyConcurrency(t, fly)
	// Service checks go to internal_port, through percore to the app: one
	// aimed at percore's probe paths would ask the app instead.
	for _, c := range fly.HTTPService.Checks {
		if slices.Contains(probePaths, c.Path) {
			t.Errorf("[[http_service.checks]] path %s reaches the app, not percore's admin listener: make it a top-level check on port %d", c.Path, d.AdminPort)
		}
	}
	var paths []string
	for name, c := range fly.Checks {
		if c.Type != "http" || c.Port != d.AdminPort || !slices.Contains(probePaths, c.Path) {
			t.Errorf("[checks.%s] = %+v, want an http check of one of %v on percore's admin port %d", name, c, probePaths, d.AdminPort)
		}
		paths = append(paths, c.Path)
	}
	if !slices.Contains(paths, "/readyz") {
		t.Errorf("no top-level check of /readyz (checks: %v)", paths)
	}

	signal := fly.KillSignal
	if signal == "" {
		signal = flyDefaultKillSignal
	}
	if signal != "SIGTERM" && signal != "SIGINT" {
		t.Errorf("kill_signal = %s: percore stops gracefully on SIGTERM or SIGINT only", signal)
	}
	kill, err := flyDuration(fly.KillTimeout)
	if err != nil {
		t.Fatalf("kill_timeout: %v", err)
	}
	shutdown := shutdownTimeout(t, d, fly.Env["PERCORE_SHUTDOWN_TIMEOUT"])
	if kill <= shutdown {
		t.Errorf("kill_timeout %s does not outlast percore's shutdown timeout %s", kill, shutdown)
	}

	// Fly's proxy connects from the Machine's private IPv4 network (seen as
	// ::ffff:172.19.x.x by apps) and sends Fly-Client-IP and X-Forwarded-*:
	// percore must keep them, and only from there.
	checkTrusted(t, "fly.toml", fly.Env["PERCORE_TRUSTED_PROXIES"],
		[]string{"172.19.2.97", "::ffff:172.19.2.97", "fdaa:0:1:a7b:1::2"}, []string{"7.7.7.7", "2001:db8::1"})

	// Fly's Prometheus scrapes [metrics]: percore's /metrics on the admin
	// port, with the saturation an autoscaler reads.
	if fly.Metrics.Port != d.AdminPort || fly.Metrics.Path != "/metrics" {
		t.Errorf("[metrics] = %+v, want /metrics on percore's admin port %d", fly.Metrics, d.AdminPort)
	}
	bodies := probeAdmin(t, mapEnv(fly.Env), append(paths, fly.Metrics.Path))
	if !metricNames(t, bodies[fly.Metrics.Path])["percore_saturation"] {
		t.Errorf("%s has no percore_saturation", fly.Metrics.Path)
	}
}

// The requests in flight per worker that fly.toml's concurrency limits
// allow, as examples/deploy/README.md explains them for an I/O-bound node
// app: past the soft limit Fly's proxy prefers other Machines (and starts a
// stopped one), at the hard limit it sends this one no more.
const (
	flySoftPerWorker = 25
	flyHardPerWorker = 40
)

// checkFlyConcurrency checks that fly.toml's concurrency limits count
// requests and are the workers percore plans for the [[vm]] times the
// per-worker figures.
func checkFlyConcurrency(t *testing.T, fly flyConfig) {
	t.Helper()
	c := fly.HTTPService.Concurrency
	if c.Type != "requests" {
		t.Errorf("http_service.concurrency type %q, want requests: percore balances requests, not connections", c.Type)
	}
	vm := fly.VM[0]
	memory := fmt.Sprint(vm.Memory)
	if mb, ok := vm.Memory.(int64); ok {
		memory = fmt.Sprintf("%dM", mb)
	}
	out, err := exec.Command(percoreBin, "plan", "--cpus", strconv.Itoa(vm.CPUs), "--memory", memory).CombinedOutput()
	if err != nil {
		t.Fatalf("percore plan for [[vm]] %+v: %v\n%s", vm, err, out)
	}
	m := regexp.MustCompile(`(?m)^workers:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("percore plan printed no worker count:\n%s", out)
	}
	workers, _ := strconv.Atoi(string(m[1]))
	if c.SoftLimit != workers*flySoftPerWorker || c.HardLimit != workers*flyHardPerWorker {
		t.Errorf("concurrency soft_limit %d, hard_limit %d; percore plans %d workers for [[vm]] %+v: want %d and %d",
			c.SoftLimit, c.HardLimit, workers, vm, workers*flySoftPerWorker, workers*flyHardPerWorker)
	}
}

// checkTrusted checks that a config's PERCORE_TRUSTED_PROXIES is set (the
// default, loopback, would drop the platform edge's forwarding headers),
// trusts the edge's addresses and none of the others.
func checkTrusted(t *testing.T, file, v string, edge, others []string) {
	t.Helper()
	if v == "" {
		t.Errorf("%s does not set PERCORE_TRUSTED_PROXIES: percore would remove the edge's forwarding headers", file)
		return
	}
	trusted, err := proxy.ParseTrusted(v)
	if err != nil {
		t.Fatalf("%s: PERCORE_TRUSTED_PROXIES=%q: %v", file, v, err)
	}
	contains := func(s string) bool {
		a := netip.MustParseAddr(s).Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, a := range edge {
		if !contains(a) {
			t.Errorf("%s: PERCORE_TRUSTED_PROXIES=%q does not trust the edge's address %s", file, v, a)
		}
	}
	for _, a := range others {
		if contains(a) {
			t.Errorf("%s: PERCORE_TRUSTED_PROXIES=%q trusts %s, which may be any client", file, v, a)
		}
	}
}

// flyDuration reads kill_timeout: whole seconds or a Go-style duration.
func flyDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case nil:
		return flyDefaultKillTimeout, nil
	case int64:
		return time.Duration(v) * time.Second, nil
	case string:
		return time.ParseDuration(v)
	}
	return 0, fmt.Errorf("%v (%T) is neither seconds nor a duration", v, v)
}

// shutdownTimeout is PERCORE_SHUTDOWN_TIMEOUT as a config sets it, else
// percore's default.
func shutdownTimeout(t *testing.T, d percoreDefaults, v string) time.Duration {
	t.Helper()
	if v == "" {
		return d.ShutdownTimeout
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("PERCORE_SHUTDOWN_TIMEOUT=%q: %v", v, err)
	}
	return dur
}

func mapEnv(m map[string]string) []string {
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// probeAdmin starts percore with a config's environment and node-hello,
// GETs each path on the admin listener (200 wanted), stops it, and returns
// the bodies by path.
func probeAdmin(t *testing.T, env []string, paths []string) map[string]string {
	t.Helper()
	node := needRuntime(t, "node")
	in := startPercore(t, repoRoot(), env, "--workers", "1", "--", node, filepath.Join("examples", "node-hello", "server.js"))
	in.workers(1)
	bodies := map[string]string{}
	for _, p := range paths {
		bodies[p] = get(t, "http://"+in.admin+p)
	}
	in.stop()
	return bodies
}

// metricNames returns the names of the metric families in a /metrics body,
// which must parse as Prometheus text.
func metricNames(t *testing.T, body string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	names := map[string]bool{}
	for name := range families {
		names[name] = true
	}
	return names
}
