package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/percore/percore/direct"
	"github.com/percore/percore/health"
	"github.com/percore/percore/promtext"
	"github.com/percore/percore/promtext/process"
	"github.com/percore/percore/proxy"
	"github.com/percore/percore/supervisor"
)

// helpRestarts names every reason the supervisor counts a worker's end for.
var helpRestarts = "Worker processes ended, by reason: " + supervisor.EndReasonsHelp() + "."

// Help texts of percore's own metrics.
const (
	helpRequests = "Requests answered, by worker id (\"none\": answered by percore without a worker) and status class; a request percore refuses is the client's fault and counts as 4xx, even the 505 of an HTTP version it does not speak."
	helpDuration = "Time from a request's arrival until its response header was ready (bodies may stream on)."
	helpInflight = "Requests, streamed responses and tunnels in progress, by worker id."
	helpRSS      = "Memory of each worker's whole process tree: the sum of its processes' PSS (shared pages divided among the processes sharing them), or of their RSS where /proc/PID/smaps_rollup cannot be read."
	helpReady    = "Workers taking traffic."
	helpWorkers  = "Worker slots configured."
	helpReloads  = "Rolling reloads finished, by result."
	helpTunnels  = "Upgraded connections (WebSockets) open."
	helpSticky   = "Requests pinned to a worker (a socket.io session, --affinity), by result: followed to it, or moved because it was draining, ejected, full or gone."
	helpSessions = "socket.io (engine.io) sessions whose worker percore remembers."
	helpEvicted  = "socket.io sessions percore forgot, by reason: expired (no request for 2 minutes), capacity (the least recently seen, to make room in a full table), worker_gone."
	helpRefused  = "socket.io handshakes refused with 429, not forwarded, because their client address was over --socketio-session-rate."
	helpDirect   = "1 when connections go from the kernel to the workers (--mode direct): percore then measures no requests, inflight, tunnels, saturation or queue."
	helpPassed   = "Connections queued for a worker slot without a serving worker (--mode direct), accepted by percore: passed on to a serving worker, which took it; closed because none took it within 10 s; or passed to a worker that did not answer within 5 s."
	helpChecks   = "Active health checks of workers, by check (ping: the preload's ping listener; options: OPTIONS * where a worker has none; get: --health-path) and result."
)

// Help texts of the load figures, for an autoscaler.
const (
	helpSaturation = "Busy workers (a request in flight; an open WebSocket alone does not count) as a share of the ready ones, over the last 10 s sampled every 100 ms: 0 idle, 1 every worker always busy."
	helpPerWorker  = "Requests in flight per ready worker (an open WebSocket alone does not count), over the last 10 s sampled every 100 ms."
	helpQueued     = "Requests waiting for a worker at its --max-inflight limit, the mean over the last 10 s sampled every 100 ms; 0 without --max-inflight."
)

// notMeasured is what /status says of the request figures in direct mode.
const notMeasured = "in --mode direct connections go from the kernel to the workers: percore sees no request"

// collector writes the supervisor's and the proxy's own counters, and
// percore's process metrics, in the Prometheus text format at scrape time,
// so the request path only bumps atomics.
type collector struct {
	sup     *supervisor.Supervisor
	pool    *proxy.Pool
	handler *proxy.Handler
	load    *loadWindow // nil in direct mode
	mode    mode
	direct  *direct.Sockets // nil in proxy mode
	checks  *health.Checker // nil with --health-interval off
}

// WriteMetrics implements health.MetricsWriter. When the process metrics
// cannot all be read, the others are written and the error returned.
func (c *collector) WriteMetrics(w io.Writer) error {
	var s promtext.Set
	if c.mode == modeDirect {
		// No request passes through percore: no figure rather than a zero.
		s.Gauge("percore_direct_mode", helpDirect).Add(1)
		passed, closed := c.direct.Passed()
		queued := s.Counter("percore_direct_queued_connections_total", helpPassed, "result")
		queued.Add(float64(passed), "passed")
		queued.Add(float64(closed), "closed")
		queued.Add(float64(c.direct.Unanswered()), "unanswered")
		s.Gauge("percore_direct_workers_not_accepting", helpNotAccepting).Add(float64(len(c.direct.NotAccepting())))
	} else {
		c.addRequests(&s)
		m := c.load.means()
		s.Gauge("percore_saturation", helpSaturation).Add(m.Saturation)
		s.Gauge("percore_inflight_per_worker", helpPerWorker).Add(m.PerWorker)
		s.Gauge("percore_queued_requests", helpQueued).Add(m.Queued)
	}
	c.addWorkers(&s)
	c.addSupervisor(&s)
	c.addChecks(&s)
	procErr := process.Add(&s, "percore")
	if _, err := s.WriteTo(w); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	if procErr != nil {
		return fmt.Errorf("process metrics: %w", procErr)
	}
	return nil
}

var codeLabels = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// addRequests adds the proxy's request counters and duration histogram.
func (c *collector) addRequests(s *promtext.Set) {
	// Label names in alphabetical order, the order scrapes have always shown.
	requests := s.Counter("percore_requests_total", helpRequests, "code", "worker")
	for _, sc := range c.pool.Counts() {
		worker := "none"
		if sc.Slot >= 0 {
			worker = strconv.Itoa(sc.Slot)
		}
		for i, n := range sc.Codes {
			requests.Add(float64(n), codeLabels[i], worker)
		}
	}
	sc := c.pool.Sticky()
	sticky := s.Counter("percore_sticky_requests_total", helpSticky, "result")
	sticky.Add(float64(sc.Followed), "followed")
	sticky.Add(float64(sc.Moved), "moved")
	s.Gauge("percore_socketio_sessions", helpSessions).Add(float64(sc.Sessions))
	evicted := s.Counter("percore_socketio_session_evictions_total", helpEvicted, "reason")
	evicted.Add(float64(sc.Evicted.Expired), "expired")
	evicted.Add(float64(sc.Evicted.Capacity), "capacity")
	evicted.Add(float64(sc.Evicted.WorkerGone), "worker_gone")
	s.Counter("percore_socketio_handshakes_refused_total", helpRefused).Add(float64(sc.Refused))
	h := c.pool.Durations()
	s.Histogram("percore_request_duration_seconds", helpDuration, proxy.DurationBuckets[:]).
		AddHistogram(h.Buckets[:], h.Count, h.Sum)
}

// addWorkers adds the per-worker gauges and the worker counts.
func (c *collector) addWorkers(s *promtext.Set) {
	proxied := c.mode == modeProxy
	var inflight *promtext.Family
	if proxied {
		inflight = s.Gauge("percore_inflight_requests", helpInflight, "worker")
	}
	rss := s.Gauge("percore_worker_rss_bytes", helpRSS, "worker")
	snap := c.sup.Snapshot()
	for _, ws := range snap {
		id := strconv.Itoa(ws.ID)
		if proxied {
			in, _ := c.pool.SlotTraffic(ws.ID)
			inflight.Add(float64(in), id)
		}
		rss.Add(float64(ws.RSS), id)
	}
	s.Gauge("percore_workers_ready", helpReady).Add(float64(workersReady(c.sup, c.direct)))
	s.Gauge("percore_workers", helpWorkers).Add(float64(len(snap)))
	if proxied {
		s.Gauge("percore_tunnels_open", helpTunnels).Add(float64(c.handler.Tunnels()))
	}
}

// addSupervisor adds the supervisor's restart and reload counters.
func (c *collector) addSupervisor(s *promtext.Set) {
	ends, reloads := c.sup.Counts()
	restarts := s.Counter("percore_worker_restarts_total", helpRestarts, "reason")
	for reason, n := range ends {
		restarts.Add(float64(n), reason.String())
	}
	results := s.Counter("percore_reloads_total", helpReloads, "result")
	for result, n := range reloads {
		results.Add(float64(n), result)
	}
}

// addChecks adds the active health checks' counters.
func (c *collector) addChecks(s *promtext.Set) {
	if c.checks == nil {
		return
	}
	checks := s.Counter("percore_health_checks_total", helpChecks, "check", "result")
	for _, n := range c.checks.Counts() {
		checks.Add(float64(n.Passed), n.Kind.String(), "passed")
		checks.Add(float64(n.Failed), n.Kind.String(), "failed")
	}
}
