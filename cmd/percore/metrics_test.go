package main

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
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
		"percore_saturation", "percore_inflight_per_worker", "percore_queued_requests",
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

// gauge returns the value of a gauge without labels; false when absent.
func gauge(f map[string]*dto.MetricFamily, name string) (float64, bool) {
	m := f[name].GetMetric()
	if len(m) != 1 {
		return 0, false
	}
	return m[0].GetGauge().GetValue(), true
}

// TestMetricsSaturation holds one request on one of two node workers: the
// saturation rises through the values between as the 10 s window fills
// with the busy worker, never beyond one busy worker of two (nor the
// requests per worker beyond one request on two), and falls back to 0 a
// window after the answer.
func TestMetricsSaturation(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second) // the second; no request yet
	f := scrape(t, in)
	for _, name := range []string{"percore_saturation", "percore_inflight_per_worker", "percore_queued_requests"} {
		if v, ok := gauge(f, name); !ok || v != 0 {
			t.Errorf("idle: %s = %v (present %v), want 0", name, v, ok)
		}
	}

	const hold = 15 * time.Second
	done := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: hold + 30*time.Second}).Get(fmt.Sprintf("http://%s/slow?ms=%d", in.addr, hold.Milliseconds()))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	var seen []float64
	var firstSeen time.Duration // from the request to the first scrape above 0
	began := time.Now()
	full := false
	for !full {
		select {
		case err := <-done:
			t.Fatalf("the held request ended (%v) before the saturation reached 0.45; seen %v", err, seen)
		case <-time.After(250 * time.Millisecond):
		}
		f := scrape(t, in)
		v, ok := gauge(f, "percore_saturation")
		if !ok {
			t.Fatal("/metrics lacks percore_saturation")
		}
		if v > 0.5+1e-9 {
			t.Fatalf("saturation %v with one request on one of two workers, want at most 0.5", v)
		}
		if n, _ := gauge(f, "percore_inflight_per_worker"); n > 0.5+1e-9 {
			t.Fatalf("percore_inflight_per_worker %v with one request on two workers, want at most 0.5", n)
		}
		if v > 0 {
			if len(seen) == 0 {
				firstSeen = time.Since(began)
			}
			seen = append(seen, v)
		}
		full = v >= 0.45
	}
	t.Logf("rising: %v, the first %v after the request", seen, firstSeen)
	if err := <-done; err != nil {
		t.Fatalf("the held request: %v", err)
	}
	// The request was held longer than the window: every sample is of it
	// now. An instant figure would drop to 0 at once; the window's mean
	// comes down through values between as idle samples replace busy ones
	// over the next 10 s. (On the way up it may not: samples taken before
	// the workers were ready count for nothing, so the first busy sample
	// can make the mean 0.5 at once.)
	ended := time.Now()
	var falling []float64
	var firstScrape time.Duration
	deadline := ended.Add(testutil.Scaled(30 * time.Second))
	for {
		v, _ := gauge(scrape(t, in), "percore_saturation")
		if firstScrape == 0 {
			firstScrape = time.Since(ended)
		}
		falling = append(falling, v)
		if v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("saturation still %v long after the only request ended", v)
		}
		time.Sleep(250 * time.Millisecond)
	}
	switch between := slices.IndexFunc(falling, func(v float64) bool { return v > 0 && v < 0.45 }); {
	case between >= 0:
	case firstScrape > 9*time.Second:
		t.Logf("no scrape between the request's end and 9 s later came through (the first after %v): the fall went unseen", firstScrape)
	default:
		t.Errorf("the saturation went from 0.5 to 0 with nothing between after the request ended: %v", falling)
	}
}
