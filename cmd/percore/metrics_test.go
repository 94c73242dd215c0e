package main

import (
	"net/http"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, in *instance) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("/metrics Content-Type %q, want the text format's", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	return families
}

func requestsTotal(f map[string]*dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f["percore_requests_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	return total
}

func TestMetricsCountEveryRequest(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 20*time.Second)
	before := requestsTotal(scrape(t, in))
	const sent = 37
	servingPids(t, in, sent)
	after := scrape(t, in)
	if got := requestsTotal(after) - before; got != sent {
		t.Errorf("percore_requests_total rose by %v, want exactly %d", got, sent)
	}
	names := []string{"percore_request_duration_seconds", "percore_inflight_requests",
		"percore_worker_rss_bytes", "percore_workers_ready", "percore_workers", "percore_tunnels_open",
		"percore_process_max_fds", "percore_process_virtual_memory_max_bytes",
		"percore_socketio_sessions", "percore_socketio_session_evictions_total", "percore_socketio_handshakes_refused_total",
		"percore_health_checks_total"}
	if runtime.GOOS == "linux" { // read from /proc
		names = append(names, "percore_process_resident_memory_bytes", "percore_process_cpu_seconds_total",
			"percore_process_open_fds", "percore_process_virtual_memory_bytes", "percore_process_start_time_seconds")
	}
	for _, name := range names {
		if after[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if n := after["percore_workers_ready"].GetMetric()[0].GetGauge().GetValue(); n != 2 {
		t.Errorf("percore_workers_ready = %v, want 2", n)
	}
	if c := after["percore_request_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); c < sent {
		t.Errorf("histogram counts %d requests, want at least %d", c, sent)
	}
}
