package health

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"
)

// Status is what GET /status answers: the sizing plan and every worker. It
// never holds environment variables, the app's output (which may print
// them), or anything else secret.
type Status struct {
	Version      string  `json:"version"`
	UptimeS      float64 `json:"uptime_s"`
	ShuttingDown bool    `json:"shutting_down"`
	ReadyWorkers int     `json:"ready_workers"`
	// Inflight is the requests the workers are serving, Queue those waiting
	// for a worker at its in-flight limit.
	Inflight int64 `json:"inflight"`
	Queue    int64 `json:"queue"`
	// Answered and Errors5xx count every answer since percore started, 5xx
	// ones apart, including those percore gave with no worker; a rate is
	// the difference of two readings. A request percore refuses is the
	// client's fault and is not in Errors5xx, even when refused with 505.
	Answered  uint64 `json:"answered"`
	Errors5xx uint64 `json:"errors_5xx"`
	// RSSHistoryStepS is the seconds between two points of a worker's
	// RSSHistory.
	RSSHistoryStepS float64        `json:"rss_history_step_s"`
	Plan            PlanStatus     `json:"plan"`
	Reload          ReloadStatus   `json:"reload"`
	Sticky          StickyStatus   `json:"sticky"`
	Workers         []WorkerStatus `json:"workers"`
	// Mode is how connections reach the workers: "proxy" or "direct".
	Mode string `json:"mode,omitempty"`
	// RequestsNotMeasured, when set, says why the per-request figures
	// (requests, inflight, latency) are not measured: in direct mode
	// connections go from the kernel to the workers.
	RequestsNotMeasured string `json:"requests_not_measured,omitempty"`
}

// StickyStatus is what sticky routing did: socket.io (engine.io) sessions
// followed to their worker, and --affinity.
type StickyStatus struct {
	Affinity string `json:"affinity"` // off, cookie, ip, header:NAME
	// Followed counts the pinned requests that went to their worker, Moved
	// those that went elsewhere because it was draining, ejected, full or
	// gone.
	Followed uint64 `json:"followed"`
	Moved    uint64 `json:"moved"`
	Sessions int    `json:"socketio_sessions"` // engine.io sessions remembered now
}

// PlanStatus is the sizing decision and where its figures came from.
type PlanStatus struct {
	CPUs           int    `json:"cpus"`
	CPUSource      string `json:"cpu_source"`
	MemoryBytes    uint64 `json:"memory_bytes"`
	MemorySource   string `json:"memory_source"`
	SwapBytes      uint64 `json:"swap_bytes"`
	Cgroup         string `json:"cgroup"`
	Workers        int    `json:"workers"`
	WorkersReason  string `json:"workers_reason"`
	HeapMB         int    `json:"heap_mb"`
	HeapReason     string `json:"heap_reason"`
	BudgetBytes    uint64 `json:"budget_bytes"`
	MaxMemoryBytes uint64 `json:"max_memory_bytes"`
	Runtime        string `json:"runtime"`
	Mode           string `json:"mode"` // "proxy": requests go through percore
	// Changed is the last change of the plan while percore runs (a scale,
	// a cgroup limit changed); nil while the first plan is in force.
	Changed *PlanChange `json:"changed,omitempty"`
}

// PlanChange is a new plan made while percore runs.
type PlanChange struct {
	At   string `json:"at"`   // RFC 3339, UTC
	Why  string `json:"why"`  // "scale", "cgroup limits changed", "reload"
	What string `json:"what"` // "workers 2→3, heap 147→86MiB, budget 227→151MiB"
}

// ReloadStatus is the last rolling reload.
type ReloadStatus struct {
	State string `json:"state"` // "", "running", "done", "failed"
	// Error says why the reload failed in percore's words (exit code,
	// signal, not ready in time) and where to look: percore's log. It
	// never holds the app's output, which may print secrets.
	Error    string     `json:"error,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Count    int        `json:"count"`
}

// WorkerStatus is one worker slot.
type WorkerStatus struct {
	ID    int    `json:"id"`
	PID   int    `json:"pid"`
	State string `json:"state"`
	Ready bool   `json:"ready"` // takes new requests: ready and not ejected
	// NotRouted says why the worker takes no new requests ("starting",
	// "ejected", "draining", "backoff", "stopped", or in direct mode "not
	// accepting"), or "full" when it is ready but at its in-flight limit;
	// empty when it takes them.
	NotRouted string `json:"not_routed,omitempty"`
	Restarts  int    `json:"restarts"` // unplanned: crashes, failed starts, health-check ejections, memory loops
	Replaced  int    `json:"replaced"` // planned: reloads and recycling
	// LastExit is how the previous process of this slot ended.
	LastExit *ExitStatus `json:"last_exit"`
	// RSSBytes is the memory of the worker's whole process tree, as
	// MemoryMeasure says: "pss", the sum of its processes' proportional set
	// sizes (a page shared by several processes counts a share to each, as
	// the kernel's memory cgroup charges it once), or "rss", the sum of their
	// resident sets, where a process's /proc/PID/smaps_rollup cannot be read
	// (shared pages then count once per process).
	RSSBytes       uint64  `json:"rss_bytes"`
	MemoryMeasure  string  `json:"memory_measure,omitempty"`
	HeapMB         int     `json:"heap_mb"`
	Inflight       int64   `json:"inflight"`
	Requests       uint64  `json:"requests"`
	UptimeS        float64 `json:"uptime_s"`
	HealthFailures int     `json:"health_failures"`
	// Answered and Errors5xx count the slot's answers, 5xx ones apart,
	// across its workers; they only grow.
	Answered  uint64 `json:"answered"`
	Errors5xx uint64 `json:"errors_5xx"`
	// Latency is what the slot's answers took over the last seconds; nil
	// where percore does not see the requests.
	Latency *LatencyStatus `json:"latency"`
	// RSSHistory is the slot's RSS over the last minutes, oldest first,
	// one point every Status.RSSHistoryStepS (0 while nothing was measured).
	RSSHistory []uint64 `json:"rss_history"`

	// NotAccepting says, in direct mode, why a worker that serves counts as
	// not accepting on its public socket ("accept queue full: 128 of 128"),
	// while NotRouted is "not accepting".
	NotAccepting string `json:"not_accepting,omitempty"`
}

// LatencyStatus is what a worker slot's answers took, from the request's
// arrival at percore until the worker's response header, over a window.
type LatencyStatus struct {
	WindowS int     `json:"window_s"`
	Count   uint64  `json:"count"`
	P50Ms   float64 `json:"p50_ms"` // within about 19% of the exact figure
	P99Ms   float64 `json:"p99_ms"`
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code   int    `json:"code"`             // -1 when a signal ended it
	Signal string `json:"signal,omitempty"` // e.g. "killed"
	Reason string `json:"reason"`           // crash, boot failure, oom kill, reload, max-memory, memory loop, health check, stopped ...: percore's words, never the app's output
	// Stop says how percore's stop of the process went; nil when no stop
	// of percore's ended it.
	Stop *StopStatus `json:"stop,omitempty"`
}

// StopStatus is how percore stopped a process.
type StopStatus struct {
	// How is "drained, then signalled" (nothing was in flight when it got
	// the stop signal), "signalled while busy" (it got it with work in
	// flight, and exited) or "killed at the deadline".
	How string `json:"how"`
	// Counted is what InFlight and Cut count: "requests" (proxy mode) or
	// "connections" (direct mode, where percore does not see requests).
	Counted string `json:"counted"`
	// InFlight is what the process had when it got the stop signal, Cut
	// what it still had when it was killed: requests whose clients got
	// 502, or connections closed without an answer.
	InFlight int `json:"in_flight"`
	Cut      int `json:"cut"`
}

// StatusSource builds the status on demand.
type StatusSource interface {
	Status() Status
}

func (s *Server) status(ctx *fasthttp.RequestCtx) {
	if s.cfg.Status == nil {
		ctx.Error("not found\n", fasthttp.StatusNotFound)
		return
	}
	st := s.cfg.Status.Status()
	st.ShuttingDown = s.shutdown.Load()
	body, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		ctx.Error("cannot encode status\n", fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
