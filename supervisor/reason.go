package supervisor

import "strings"

// EndReason is why a worker ended, in percore's words: the label of
// Counts, the reason of WorkerStatus.LastReason (alone, or before a colon
// and its detail) and of the log. EndReasons lists every one.
type EndReason string

// The reasons a worker ends.
const (
	// EndCrash: a worker that had served for at least MinUptime exited
	// on its own.
	EndCrash EndReason = "crash"
	// EndBootFailure: a worker exited before it was ready, within
	// MinUptime of becoming ready, or was refused by percore's preload.
	EndBootFailure EndReason = "boot failure"
	// EndNotReady: a worker did not listen in time (Config.ReadyTimeout),
	// or what listened was not its own.
	EndNotReady EndReason = "not ready in time"
	// EndStartFailed: no process could be started for the worker.
	EndStartFailed EndReason = "start failed"
	// EndShortage: percore ran out of file descriptors or memory while
	// starting the worker or checking it; not counted as a failed start.
	EndShortage EndReason = "out of resources"
	// EndHealthCheck: a worker failed its active health checks and was
	// ejected.
	EndHealthCheck EndReason = "health check"
	// EndOOMKill: the kernel's OOM killer ended it; every record and
	// count of such an end says so, whatever else was under way.
	EndOOMKill EndReason = "oom kill"
	// EndMemoryLoop: recycled for its memory soon after ready, as was the
	// worker before it; after a backoff unless it keeps growing.
	EndMemoryLoop EndReason = "memory loop"
	// EndReload: replaced by a rolling reload.
	EndReload EndReason = "reload"
	// EndMaxMemory: the memory guard recycled or killed it.
	EndMaxMemory EndReason = "max-memory"
	// EndMaxRequests: recycled after serving its maximum of requests.
	EndMaxRequests EndReason = "max-requests"
	// EndProbation: a replacement exited while on probation; the old
	// worker kept serving. Said of a failed reload, never counted.
	EndProbation EndReason = "died on probation"
	// EndStopped: stopped for good (percore stops, or the slot is scaled
	// away). Recorded, never counted.
	EndStopped EndReason = "stopped"
	// EndReplaced: the slot ended it for its replacement; its end is
	// recorded and counted with the replacement's reason.
	EndReplaced EndReason = "replaced"
)

// endInfo is what percore says of a reason besides its words.
type endInfo struct {
	reason  EndReason
	counted bool   // Counts may hold it
	planned bool   // an end percore wanted, not a fault
	note    string // what the metrics' help says of it, when its words are not enough
}

// endReasons is the one list of reasons, in the order the help names them.
var endReasons = []endInfo{
	{reason: EndCrash, counted: true},
	{reason: EndBootFailure, counted: true},
	{reason: EndNotReady, counted: true},
	{reason: EndStartFailed, counted: true},
	{reason: EndShortage, counted: true, note: "percore out of file descriptors or memory, not a failed start"},
	{reason: EndHealthCheck, counted: true},
	{reason: EndOOMKill, counted: true, note: "the kernel's OOM killer"},
	{reason: EndMemoryLoop, counted: true,
		note: "recycled for its memory soon after ready, as was the worker before: after a backoff unless it keeps growing"},
	{reason: EndReload, counted: true, planned: true},
	{reason: EndMaxMemory, counted: true, planned: true},
	{reason: EndMaxRequests, counted: true, planned: true},
	{reason: EndProbation},
	{reason: EndStopped},
	{reason: EndReplaced},
}

// EndReasons returns every reason a worker may end for, those Counts may
// hold first.
func EndReasons() []EndReason {
	out := make([]EndReason, len(endReasons))
	for i, e := range endReasons {
		out[i] = e.reason
	}
	return out
}

// String returns the reason's words.
func (r EndReason) String() string { return string(r) }

// info returns what is known of r; ok is false for a reason not in the list.
func (r EndReason) info() (endInfo, bool) {
	for _, e := range endReasons {
		if e.reason == r {
			return e, true
		}
	}
	return endInfo{}, false
}

// Counted reports whether Counts may hold r: whether it ends a worker
// rather than only saying why (EndStopped, EndReplaced, EndProbation).
func (r EndReason) Counted() bool {
	e, _ := r.info()
	return e.counted
}

// Planned reports whether r is an end percore wanted (a reload, a
// recycle), rather than a fault.
func (r EndReason) Planned() bool {
	e, _ := r.info()
	return e.planned
}

// EndReasonsHelp names the counted reasons for a metric's help text: the
// unplanned, then the planned, each with a note where its words are not
// enough.
func EndReasonsHelp() string {
	var unplanned, planned []string
	for _, e := range endReasons {
		if !e.counted {
			continue
		}
		words := string(e.reason)
		if e.note != "" {
			words += " (" + e.note + ")"
		}
		if e.planned {
			planned = append(planned, words)
		} else {
			unplanned = append(unplanned, words)
		}
	}
	return strings.Join(unplanned, ", ") + " (unplanned); " + strings.Join(planned, ", ") + " (planned)"
}
