package examples_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// k8sKinds are the kinds the example manifests may hold, with the API
// version each must name and a new object of its type.
var k8sKinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Deployment":              {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"Service":                 {"v1", func() any { return &corev1.Service{} }},
	"ConfigMap":               {"v1", func() any { return &corev1.ConfigMap{} }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	"PodDisruptionBudget":     {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
}

// decodeManifests decodes each document of a manifest file into the API type
// of its kind, strictly: a field the type does not have (a misspelt or
// misplaced key) or a key given twice fails the test.
func decodeManifests(t *testing.T, path string) []any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := k8syaml.NewYAMLReader(bufio.NewReader(f))
	var objs []any
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		kind, ok := k8sKinds[tm.Kind]
		if !ok {
			t.Fatalf("%s: document %d is a %q, which the test does not know", path, i, tm.Kind)
		}
		if tm.APIVersion != kind.apiVersion {
			t.Errorf("%s: document %d: %s in apiVersion %q, want %q", path, i, tm.Kind, tm.APIVersion, kind.apiVersion)
		}
		obj := kind.new()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: document %d (%s): %v", path, i, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// only returns the one object of type T among objs.
func only[T any](t *testing.T, objs []any) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

// k8sDefaultGracePeriod is Kubernetes' terminationGracePeriodSeconds when unset.
const k8sDefaultGracePeriod = 30 * time.Second

// TestKubernetesConfig checks examples/deploy/kubernetes.yaml, decoded
// strictly into the Kubernetes API's types, against percore's defaults: the
// container ports are percore's public and admin ports, liveness probes
// /healthz and readiness /readyz on the admin port, CPU and memory limits
// are set (percore sizes by them) and resized in place, the grace period
// outlasts preStop plus percore's shutdown timeout, the Service reaches the
// public port, a PodDisruptionBudget selects the pods, Prometheus is pointed
// at /metrics on the admin port, and percore accepts the container's env
// and answers the probes with 200.
// The HorizontalPodAutoscaler is checked with the adapter's rules in
// TestKubernetesAutoscaler.
func TestKubernetesConfig(t *testing.T) {
	d := readDefaults(t)
	objs := decodeManifests(t, filepath.Join("deploy", "kubernetes.yaml"))
	dep := only[*appsv1.Deployment](t, objs)
	svc := only[*corev1.Service](t, objs)
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	portByName := map[string]int{}
	var ports []int
	for _, p := range c.Ports {
		portByName[p.Name] = int(p.ContainerPort)
		ports = append(ports, int(p.ContainerPort))
	}
	if !slices.Contains(ports, d.PublicPort) || !slices.Contains(ports, d.AdminPort) {
		t.Errorf("container ports %v, want percore's public %d and admin %d", ports, d.PublicPort, d.AdminPort)
	}
	resolve := func(p intstr.IntOrString) int {
		if p.Type == intstr.String {
			return portByName[p.StrVal]
		}
		return p.IntValue()
	}
	var probed []string
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
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
			t.Errorf("%s gets %s on port %v, want one of %v on percore's admin port %d", pr.name, g.Path, g.Port.String(), pr.paths, d.AdminPort)
		}
		probed = append(probed, g.Path)
	}
	checkResources(t, c)

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
		if dep.Spec.Template.Labels[k] != v || svc.Spec.Selector[k] != v {
			t.Errorf("label %s=%s: the selector, the pod template and the Service disagree", k, v)
		}
	}
	for _, o := range objs {
		if pdb, ok := o.(*policyv1.PodDisruptionBudget); ok {
			sel := pdb.Spec.Selector
			if sel == nil || len(sel.MatchLabels) == 0 {
				t.Errorf("PodDisruptionBudget %s selects no pods", pdb.Name)
				continue
			}
			for k, v := range sel.MatchLabels {
				if dep.Spec.Template.Labels[k] != v {
					t.Errorf("PodDisruptionBudget %s selects %s=%s, which the pods do not have", pdb.Name, k, v)
				}
			}
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

	// Prometheus finds /metrics by the pod's annotations.
	a := dep.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(d.AdminPort) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v, want Prometheus to scrape /metrics on percore's admin port %d", a, d.AdminPort)
	}

	// An ingress controller's pods connect from the pod network, a private
	// range (10.244.0.0/16 with flannel, 192.168.0.0/16 with Calico).
	checkTrusted(t, "kubernetes.yaml", env["PERCORE_TRUSTED_PROXIES"],
		[]string{"10.244.1.17", "192.168.3.4", "fd00:10:244::5"}, []string{"7.7.7.7", "2001:db8::1"})

	probeAdmin(t, mapEnv(env), append(probed, "/metrics"))
}

// checkResources checks that the container has a request and a limit of
// CPU and memory, which percore sizes the workers by, and that a resize of
// either goes without a restart: percore follows the new limits itself.
func checkResources(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		limit, hasLimit := c.Resources.Limits[r]
		_, hasRequest := c.Resources.Requests[r]
		if !hasLimit || !hasRequest || limit.IsZero() {
			t.Errorf("resources: %s needs a request and a limit (percore sizes the workers by the limit): %+v", r, c.Resources)
		}
		i := slices.IndexFunc(c.ResizePolicy, func(p corev1.ContainerResizePolicy) bool { return p.ResourceName == r })
		if i < 0 || c.ResizePolicy[i].RestartPolicy != corev1.NotRequired {
			t.Errorf("resizePolicy %+v: want %s resized with restartPolicy NotRequired (percore follows its limits)", c.ResizePolicy, r)
		}
	}
}

// preStopDuration is how long a preStop hook sleeps: the sleep action, or an
// exec of `sleep N`.
func preStopDuration(t *testing.T, c corev1.Container) time.Duration {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		return 0
	}
	ps := c.Lifecycle.PreStop
	switch {
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

// adapterConfig is prometheus-adapter's configuration file, as its
// pkg/config declares it, for the custom metrics rules; the adapter reads
// it strictly too. externalRules and resourceRules are left out: the
// example has none, and one added would fail the test until added here.
type adapterConfig struct {
	Rules []adapterRule `json:"rules"`
}

type adapterRule struct {
	SeriesQuery   string `json:"seriesQuery"`
	SeriesFilters []struct {
		Is    string `json:"is,omitempty"`
		IsNot string `json:"isNot,omitempty"`
	} `json:"seriesFilters,omitempty"`
	Resources struct {
		Template  string `json:"template,omitempty"`
		Overrides map[string]struct {
			Group    string `json:"group,omitempty"`
			Resource string `json:"resource"`
		} `json:"overrides,omitempty"`
	} `json:"resources"`
	Name struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery           string `json:"metricsQuery,omitempty"`
	LabelValueReplacements []struct {
		Find    string `json:"find,omitempty"`
		Replace string `json:"replace,omitempty"`
	} `json:"labelValueReplacements,omitempty"`
}

// seriesName is the metric name a rule's series query selects, as in
// `percore_saturation{namespace!=""}`; "" when it selects by labels only.
var seriesName = regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// apiName returns the name under which the adapter serves a Prometheus
// series: the rule's name.as expanded from name.matches, by default $0
// without a capture group and $1 with one. It reports false when the
// series is not the rule's.
func (r adapterRule) apiName(t *testing.T, series string) (string, bool) {
	t.Helper()
	re, err := regexp.Compile(r.Name.Matches)
	if err != nil {
		t.Fatalf("rule %q: name.matches: %v", r.SeriesQuery, err)
	}
	m := re.FindStringSubmatchIndex(series)
	if m == nil {
		return "", false
	}
	as := r.Name.As
	if as == "" {
		switch re.NumSubexp() {
		case 0:
			as = "$0"
		case 1:
			as = "$1"
		default:
			t.Fatalf("rule %q: name.matches has several groups and no name.as", r.SeriesQuery)
		}
	}
	return string(re.ExpandString(nil, as, series, m)), true
}

// TestKubernetesAutoscaler checks the HorizontalPodAutoscaler of
// kubernetes.yaml and the prometheus-adapter rules that feed it, all decoded
// strictly: it scales the Deployment, which leaves its replica count to it;
// each of its metrics is a Pods metric with an average target that the
// adapter serves from a series a real percore's /metrics exports, for each
// pod of a namespace; a saturation target lies between 0 and 1, which the
// saturation can reach.
func TestKubernetesAutoscaler(t *testing.T) {
	objs := decodeManifests(t, filepath.Join("deploy", "kubernetes.yaml"))
	dep := only[*appsv1.Deployment](t, objs)
	hpa := only[*autoscalingv2.HorizontalPodAutoscaler](t, objs)
	cm := only[*corev1.ConfigMap](t, decodeManifests(t, filepath.Join("deploy", "prometheus-adapter.yaml")))

	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != dep.Name {
		t.Errorf("scaleTargetRef %+v, want the Deployment %s", ref, dep.Name)
	}
	if dep.Spec.Replicas != nil {
		t.Errorf("the Deployment sets replicas %d: each apply would undo the autoscaler's count", *dep.Spec.Replicas)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		t.Errorf("minReplicas %v, maxReplicas %d: want 1 <= min <= max", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) == 0 {
		t.Fatal("the autoscaler has no metrics")
	}

	var cfg adapterConfig
	raw, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("the adapter's ConfigMap has no config.yaml: %v", cm.Data)
	}
	if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Fatalf("prometheus-adapter config.yaml: %v", err)
	}

	// A real percore, run as the pod runs it, says what /metrics exports.
	env := map[string]string{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	exported := metricNames(t, probeAdmin(t, mapEnv(env), []string{"/metrics"})["/metrics"])

	for _, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods == nil {
			t.Errorf("metric %+v: want a Pods metric, which the adapter serves per pod", m)
			continue
		}
		name, target := m.Pods.Metric.Name, m.Pods.Target
		if target.Type != autoscalingv2.AverageValueMetricType || target.AverageValue == nil || target.AverageValue.Sign() <= 0 {
			t.Errorf("metric %s: target %+v, want a positive averageValue", name, target)
			continue
		}
		if name == "percore_saturation" {
			if v := target.AverageValue.AsApproximateFloat64(); v >= 1 {
				t.Errorf("percore_saturation target %v: the saturation never exceeds 1, so no pod would be added", v)
			}
		}
		checkAdapterServes(t, cfg, name, exported)
	}
}

// checkAdapterServes checks that some adapter rule serves name, from a
// series that percore's /metrics exports, per pod and namespace.
func checkAdapterServes(t *testing.T, cfg adapterConfig, name string, exported map[string]bool) {
	t.Helper()
	for _, r := range cfg.Rules {
		m := seriesName.FindStringSubmatch(r.SeriesQuery)
		if m == nil {
			continue
		}
		series := m[1]
		if got, ok := r.apiName(t, series); !ok || got != name {
			continue
		}
		if !exported[series] {
			t.Errorf("the adapter serves %s from %s, which percore's /metrics does not export", name, series)
		}
		for _, label := range []string{"namespace", "pod"} {
			if r.Resources.Overrides[label].Resource != label {
				t.Errorf("rule for %s: resources %+v, want the %s label mapped to %ss", name, r.Resources, label, label)
			}
		}
		for _, part := range []string{"<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"} {
			if !strings.Contains(r.MetricsQuery, part) {
				t.Errorf("rule for %s: metricsQuery %q lacks %s: the adapter could not ask for one pod's series", name, r.MetricsQuery, part)
			}
		}
		return
	}
	t.Errorf("no prometheus-adapter rule serves %s", name)
}
