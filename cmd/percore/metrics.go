package main

import (
	"strconv"

	"github.com/percore/percore/proxy"
	"github.com/percore/percore/supervisor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// collector turns the supervisor's and the proxy's own counters into
// Prometheus metrics at scrape time, so the request path only bumps
// atomics.
type collector struct {
	sup     *supervisor.Supervisor
	pool    *proxy.Pool
	handler *proxy.Handler

	requests, duration, inflight, rss, ready, workers, restarts, reloads, tunnels *prometheus.Desc
}

func newCollector(sup *supervisor.Supervisor, pool *proxy.Pool, h *proxy.Handler) *collector {
	return &collector{
		sup: sup, pool: pool, handler: h,
		requests: prometheus.NewDesc("percore_requests_total",
			"Requests answered, by worker id (\"none\": answered by percore without a worker) and status class.",
			[]string{"worker", "code"}, nil),
		duration: prometheus.NewDesc("percore_request_duration_seconds",
			"Time from a request's arrival until its response header was ready (bodies may stream on).", nil, nil),
		inflight: prometheus.NewDesc("percore_inflight_requests",
			"Requests, streamed responses and tunnels in progress, by worker id.", []string{"worker"}, nil),
		rss: prometheus.NewDesc("percore_worker_rss_bytes",
			"Resident memory of each worker's whole process group.", []string{"worker"}, nil),
		ready: prometheus.NewDesc("percore_workers_ready",
			"Workers taking traffic.", nil, nil),
		workers: prometheus.NewDesc("percore_workers",
			"Worker slots configured.", nil, nil),
		restarts: prometheus.NewDesc("percore_worker_restarts_total",
			"Worker processes ended, by reason: crash, boot failure, not ready in time, health check (unplanned); reload, max-memory, max-requests (planned).",
			[]string{"reason"}, nil),
		reloads: prometheus.NewDesc("percore_reloads_total",
			"Rolling reloads finished, by result.", []string{"result"}, nil),
		tunnels: prometheus.NewDesc("percore_tunnels_open",
			"Upgraded connections (WebSockets) open.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.duration, c.inflight, c.rss, c.ready, c.workers,
		c.restarts, c.reloads, c.tunnels} {
		ch <- d
	}
}

var codeLabels = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range c.pool.Counts() {
		worker := "none"
		if sc.Slot >= 0 {
			worker = strconv.Itoa(sc.Slot)
		}
		for i, n := range sc.Codes {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), worker, codeLabels[i])
		}
	}
	h := c.pool.Durations()
	buckets := make(map[float64]uint64, len(h.Buckets))
	for i, le := range proxy.DurationBuckets {
		buckets[le] = h.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.duration, h.Count, h.Sum, buckets)

	snap := c.sup.Snapshot()
	for _, ws := range snap {
		id := strconv.Itoa(ws.ID)
		in, _ := c.pool.SlotTraffic(ws.ID)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(in), id)
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(ws.RSS), id)
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(c.pool.Ready()))
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(len(snap)))
	ends, reloads := c.sup.Counts()
	for reason, n := range ends {
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(n), reason)
	}
	for result, n := range reloads {
		ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(n), result)
	}
	ch <- prometheus.MustNewConstMetric(c.tunnels, prometheus.GaugeValue, float64(c.handler.Tunnels()))
}

// registry holds percore's metrics and its own process metrics.
func registry(c *collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(c, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "percore"}))
	return r
}
