package main

import (
	"time"

	"github.com/percore/percore/direct"
	"github.com/percore/percore/health"
	"github.com/percore/percore/proxy"
	"github.com/percore/percore/supervisor"
)

// statusSource builds /status from the supervisor, the proxy's pool and the plan.
type statusSource struct {
	started time.Time
	plan    plan
	sup     *supervisor.Supervisor
	pool    slotTraffic
	rss     *rssHistory
	mode    mode
	direct  *direct.Sockets // nil in proxy mode
}

// slotTraffic is the proxy's per-slot traffic.
type slotTraffic interface {
	SlotTraffic(slot int) (inflight int64, requests uint64)
	AtLimit(key uint64) bool
	SlotLatency(slot int) proxy.LatencyWindow
	Counts() []proxy.SlotCounts
	Queued() int64
	Sticky() proxy.StickyCounts
}

// Status implements health.StatusSource.
func (s *statusSource) Status() health.Status {
	now := time.Now()
	st := health.Status{
		Version: currentVersion(),
		UptimeS: now.Sub(s.started).Seconds(),
		Plan:    s.planStatus(),
		Reload:  reloadStatus(s.sup.ReloadState()),
		Queue:   s.pool.Queued(), RSSHistoryStepS: rssStep.Seconds(),
		Mode: s.mode.String(),
	}
	if s.mode == modeDirect {
		st.RequestsNotMeasured = notMeasured
	}
	counts := map[int]proxy.SlotCounts{}
	for _, c := range s.pool.Counts() {
		counts[c.Slot] = c
		st.Answered += answered(c)
		st.Errors5xx += c.Codes[4]
	}
	sc := s.pool.Sticky()
	st.Sticky = health.StickyStatus{Affinity: sc.Affinity, Followed: sc.Followed, Moved: sc.Moved, Sessions: sc.Sessions}
	out := notAccepting(s.direct)
	for _, ws := range s.sup.Snapshot() {
		w := s.workerStatus(ws, now)
		if why, stuck := out[ws.ID]; stuck && w.Ready {
			w.Ready, w.NotRouted, w.NotAccepting = false, string(supervisor.NotRoutedNotAccepting), why
		}
		if w.Ready {
			st.ReadyWorkers++
		}
		c := counts[ws.ID]
		w.Answered, w.Errors5xx = answered(c), c.Codes[4]
		st.Inflight += w.Inflight
		st.Workers = append(st.Workers, w)
	}
	return st
}

// answered is every answer of c, whatever its status.
func answered(c proxy.SlotCounts) uint64 {
	var n uint64
	for _, v := range c.Codes {
		n += v
	}
	return n
}

func (s *statusSource) planStatus() health.PlanStatus {
	p, last := s.plan.live.Plan(), s.plan.live.Last()
	res := p.Resources
	st := health.PlanStatus{
		CPUs: res.CPUs, CPUSource: res.CPUSource,
		MemoryBytes: res.Memory, MemorySource: res.MemorySource,
		SwapBytes: res.Swap, Cgroup: res.Cgroup,
		Workers: p.Workers, WorkersReason: p.WorkersReason,
		HeapMB: p.RuntimeHeapMB, HeapReason: p.HeapReason,
		BudgetBytes: p.WorkerBudget, MaxMemoryBytes: p.GuardBudget,
		Runtime: s.plan.rt.String(), Mode: s.mode.String(),
	}
	if !last.At.IsZero() {
		st.Changed = &health.PlanChange{At: last.At.UTC().Format(time.RFC3339Nano), Why: last.Why, What: last.Diff}
	}
	return st
}

func (s *statusSource) workerStatus(ws supervisor.WorkerStatus, now time.Time) health.WorkerStatus {
	out := health.WorkerStatus{
		ID: ws.ID, PID: ws.PID, State: ws.State.String(), Ready: ws.NotRouted == "", NotRouted: string(ws.NotRouted),
		Restarts: ws.Restarts, Replaced: ws.Replaced, RSSBytes: ws.RSS, HeapMB: s.plan.live.Plan().RuntimeHeapMB,
		HealthFailures: ws.HealthFails, MemoryMeasure: ws.Measure.String(),
	}
	if !ws.Started.IsZero() {
		out.UptimeS = now.Sub(ws.Started).Seconds()
	}
	if out.Ready && s.pool.AtLimit(ws.Key) {
		out.NotRouted = string(supervisor.NotRoutedFull) // still ready: its requests queue
	}
	out.Inflight, out.Requests = s.pool.SlotTraffic(ws.ID)
	if s.mode != modeDirect { // no request passes percore to be measured
		lat := s.pool.SlotLatency(ws.ID)
		out.Latency = &health.LatencyStatus{WindowS: lat.Seconds, Count: lat.Count,
			P50Ms: float64(lat.P50.Microseconds()) / 1000, P99Ms: float64(lat.P99.Microseconds()) / 1000}
	}
	out.RSSHistory = []uint64{}
	if s.rss != nil {
		out.RSSHistory = s.rss.points(ws.ID)
	}
	if ws.LastExit != nil {
		out.LastExit = &health.ExitStatus{Code: ws.LastExit.Code, Reason: ws.LastReason}
		if ws.LastExit.Signal != 0 {
			out.LastExit.Signal = ws.LastExit.Signal.String()
		}
		if st := ws.LastStop; st != nil {
			out.LastExit.Stop = &health.StopStatus{How: st.End.String(), Counted: st.Counted, InFlight: st.InFlight, Cut: st.Cut}
		}
	}
	return out
}

func reloadStatus(r supervisor.ReloadStatus) health.ReloadStatus {
	out := health.ReloadStatus{State: r.State, Error: r.Error, Count: r.Count}
	if !r.Started.IsZero() {
		out.Started = &r.Started
	}
	if !r.Finished.IsZero() {
		out.Finished = &r.Finished
	}
	return out
}

// fleet lets the health checker see and eject workers.
type fleet struct{ sup *supervisor.Supervisor }

// HealthTargets implements health.Fleet.
func (f fleet) HealthTargets() []health.Target {
	var out []health.Target
	for _, ws := range f.sup.Snapshot() {
		if ws.State == supervisor.StateReady {
			out = append(out, health.Target{Key: ws.Key, Slot: ws.ID, Addr: ws.Addr, Ping: ws.Ping})
		}
	}
	return out
}

// SetHealthFailures implements health.Fleet.
func (f fleet) SetHealthFailures(key uint64, n int) { f.sup.SetHealthFailures(key, n) }

// Eject implements health.Fleet. The checker's reason is one of
// supervisor.EndReasons (health.EjectReason; a test checks it).
func (f fleet) Eject(key uint64, reason string) { f.sup.Eject(key, supervisor.EndReason(reason)) }
