package examples_test

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
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
	"go.yaml.in/yaml/v3"
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
	Checks map[string]flyCheck `toml:"checks"`
	VM     []struct {
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
	if c := fly.HTTPService.Concurrency; c.Type != "requests" || c.SoftLimit <= 0 || c.HardLimit <= c.SoftLimit {
		t.Errorf("http_service.concurrency = %+v, want type requests and 0 < soft_limit < hard_limit", c)
	}
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

	if len(fly.VM) == 0 || fly.VM[0].CPUs < 1 || fly.VM[0].Memory == nil {
		t.Errorf("[[vm]] = %+v, want cpus and memory, which percore sizes the workers by", fly.VM)
	}

	// Fly's proxy connects from the Machine's private IPv4 network (seen as
	// ::ffff:172.19.x.x by apps) and sends Fly-Client-IP and X-Forwarded-*:
	// percore must keep them, and only from there.
	checkTrusted(t, "fly.toml", fly.Env["PERCORE_TRUSTED_PROXIES"],
		[]string{"172.19.2.97", "::ffff:172.19.2.97", "fdaa:0:1:a7b:1::2"}, []string{"7.7.7.7", "2001:db8::1"})

	probeAdmin(t, mapEnv(fly.Env), paths)
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
// GETs each path on the admin listener (200 wanted), and stops it.
func probeAdmin(t *testing.T, env []string, paths []string) {
	t.Helper()
	node := needRuntime(t, "node")
	in := startPercore(t, repoRoot(), env, "--workers", "1", "--", node, filepath.Join("examples", "node-hello", "server.js"))
	in.workers(1)
	for _, p := range paths {
		get(t, "http://"+in.admin+p)
	}
	in.stop()
}

// k8sObject is what every Kubernetes document has.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string `yaml:"name"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a container port's name
	} `yaml:"httpGet"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// k8sDefaultGracePeriod is Kubernetes' terminationGracePeriodSeconds when unset.
const k8sDefaultGracePeriod = 30 * time.Second

// TestKubernetesConfig checks examples/deploy/kubernetes.yaml against
// percore's defaults: the container ports are percore's public and admin
// ports, liveness probes /healthz and readiness /readyz on the admin port,
// CPU and memory limits are set (percore sizes by them), the grace period
// outlasts preStop plus percore's shutdown timeout, the Service reaches the
// public port, and percore accepts the container's env and answers the
// probes with 200.
func TestKubernetesConfig(t *testing.T) {
	d := readDefaults(t)
	f, err := os.Open(filepath.Join("deploy", "kubernetes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var deployments []k8sDeployment
	var services []k8sService
	dec := yaml.NewDecoder(f)
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var obj k8sObject
		if err := doc.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "Deployment":
			var dep k8sDeployment
			if err := doc.Decode(&dep); err != nil {
				t.Fatal(err)
			}
			deployments = append(deployments, dep)
		case "Service":
			var svc k8sService
			if err := doc.Decode(&svc); err != nil {
				t.Fatal(err)
			}
			services = append(services, svc)
		default:
			t.Errorf("unexpected %s %s", obj.Kind, obj.Metadata.Name)
		}
	}
	if len(deployments) != 1 || len(services) != 1 {
		t.Fatalf("kubernetes.yaml has %d Deployments and %d Services, want one of each", len(deployments), len(services))
	}
	dep, svc := deployments[0], services[0]
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	portByName := map[string]int{}
	var ports []int
	for _, p := range c.Ports {
		portByName[p.Name] = p.ContainerPort
		ports = append(ports, p.ContainerPort)
	}
	if !slices.Contains(ports, d.PublicPort) || !slices.Contains(ports, d.AdminPort) {
		t.Errorf("container ports %v, want percore's public %d and admin %d", ports, d.PublicPort, d.AdminPort)
	}
	resolve := func(p any) int {
		switch p := p.(type) {
		case int:
			return p
		case string:
			return portByName[p]
		}
		return 0
	}
	var probed []string
	for _, pr := range []struct {
		name  string
		probe *k8sProbe
		paths []string
	}{
		{"livenessProbe", c.LivenessProbe, []string{"/healthz", "/livez"}},
		{"readinessProbe", c.ReadinessProbe, []string{"/readyz"}},
	} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet", pr.name)
			continue
		}
		g := pr.probe.HTTPGet
		if !slices.Contains(pr.paths, g.Path) || resolve(g.Port) != d.AdminPort {
			t.Errorf("%s gets %s on port %v, want one of %v on percore's admin port %d", pr.name, g.Path, g.Port, pr.paths, d.AdminPort)
		}
		probed = append(probed, g.Path)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Limits[r] == "" || c.Resources.Requests[r] == "" {
			t.Errorf("resources: %s needs a request and a limit (percore sizes the workers by the limit): %+v", r, c.Resources)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	grace := k8sDefaultGracePeriod
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	shutdown := shutdownTimeout(t, d, env["PERCORE_SHUTDOWN_TIMEOUT"])
	preStop := preStopDuration(t, c)
	if grace <= preStop+shutdown {
		t.Errorf("terminationGracePeriodSeconds %s does not outlast preStop %s + percore's shutdown timeout %s", grace, preStop, shutdown)
	}

	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Metadata.Labels[k] != v || svc.Spec.Selector[k] != v {
			t.Errorf("label %s=%s: the selector, the pod template and the Service disagree", k, v)
		}
	}
	reaches := false
	for _, p := range svc.Spec.Ports {
		if resolve(p.TargetPort) == d.PublicPort {
			reaches = true
		}
	}
	if !reaches {
		t.Errorf("no Service port targets percore's public port %d: %+v", d.PublicPort, svc.Spec.Ports)
	}

	// An ingress controller's pods connect from the pod network, a private
	// range (10.244.0.0/16 with flannel, 192.168.0.0/16 with Calico).
	checkTrusted(t, "kubernetes.yaml", env["PERCORE_TRUSTED_PROXIES"],
		[]string{"10.244.1.17", "192.168.3.4", "fd00:10:244::5"}, []string{"7.7.7.7", "2001:db8::1"})

	probeAdmin(t, mapEnv(env), probed)
}

// preStopDuration is how long a preStop hook sleeps: the sleep action, or an
// exec of `sleep N`.
func preStopDuration(t *testing.T, c k8sContainer) time.Duration {
	t.Helper()
	ps := c.Lifecycle.PreStop
	switch {
	case ps == nil:
		return 0
	case ps.Sleep != nil:
		return time.Duration(ps.Sleep.Seconds) * time.Second
	case ps.Exec != nil && len(ps.Exec.Command) == 2 && filepath.Base(ps.Exec.Command[0]) == "sleep":
		n, err := strconv.Atoi(ps.Exec.Command[1])
		if err != nil {
			t.Fatalf("preStop %v: %v", ps.Exec.Command, err)
		}
		return time.Duration(n) * time.Second
	}
	t.Fatalf("preStop hook %+v: the test cannot tell how long it takes", ps)
	return 0
}
