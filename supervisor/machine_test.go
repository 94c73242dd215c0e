package supervisor

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeEffects records what a machine asks of the world and starts no
// process.
type fakeEffects struct {
	keys       uint64
	calls      []string
	spawnErr   error
	isStopping bool
	elsewhere  bool
	gaveUp     *CrashLoopError
	counts     map[EndReason]int
	recycles   []recycle
	cfg        *Config // the machine's: guard returns its Guard
}

func (f *fakeEffects) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeEffects) spawn() (*worker, error) {
	if f.spawnErr != nil {
		f.call("spawn failed")
		return nil, f.spawnErr
	}
	f.keys++
	f.call("spawn %d", f.keys)
	return &worker{key: f.keys, pid: -1, started: time.Now(), tail: &Tail{}, log: hclog.NewNullLogger(),
		gone: make(chan struct{})}, nil
}

func (f *fakeEffects) route(w *worker) { f.call("route %d", w.key) }
func (f *fakeEffects) drain(w *worker) <-chan struct{} {
	f.call("drain %d", w.key)
	c := make(chan struct{})
	close(c)
	return c
}
func (f *fakeEffects) halt(w *worker, how haltKind) { f.call("halt %d %d", w.key, how) }
func (f *fakeEffects) killGroup(w *worker)          { f.call("kill %d", w.key) }
func (f *fakeEffects) cleanup(w *worker)            { f.call("cleanup %d", w.key) }
func (f *fakeEffects) memory(w *worker) (uint64, MemoryMeasure, bool) {
	return 42 << 20, MeasurePSS, true
}
func (f *fakeEffects) guard() Guard          { return f.cfg.Guard }
func (f *fakeEffects) after(d time.Duration) { f.call("after %s", d) }
func (f *fakeEffects) probation(w *worker, d time.Duration) {
	f.call("probation %d %s", w.key, d)
}
func (f *fakeEffects) queueRecycle(r recycle) bool {
	f.call("recycle %d", r.key)
	f.recycles = append(f.recycles, r)
	return true
}
func (f *fakeEffects) firstOutcome()              {}
func (f *fakeEffects) readyElsewhere() bool       { return f.elsewhere }
func (f *fakeEffects) giveUp(err *CrashLoopError) { f.gaveUp = err }
func (f *fakeEffects) diagnose(w *worker, e Exit) {}
func (f *fakeEffects) stopping() bool             { return f.isStopping }
func (f *fakeEffects) count(reason EndReason) {
	if f.counts == nil {
		f.counts = map[EndReason]int{}
	}
	f.counts[reason]++
}

func newTestMachine() (*machine, *fakeEffects) {
	fx := &fakeEffects{}
	cfg := Config{Command: []string{"x"}, Workers: 1, Launcher: noLauncher{}, Router: newRecordingRouter(),
		Output: NewOutput(OutputConfig{}), MinUptime: time.Nanosecond, Probation: 3 * time.Second}
	if err := cfg.setDefaults(); err != nil {
		panic(err)
	}
	cfg.MaxBootFailures = 1000
	fx.cfg = &cfg
	return newMachine(0, &cfg, fx, hclog.NewNullLogger()), fx
}

func request(stopFirst bool) *replaceRequest {
	return &replaceRequest{reason: "reload", stopFirst: stopFirst, probation: true, done: make(chan error, 1)}
}

// machineIn returns a machine driven into phase p by events.
func machineIn(t *testing.T, p phase) (*machine, *fakeEffects) {
	t.Helper()
	m, fx := newTestMachine()
	m.start()
	switch p {
	case phaseReady:
		m.handle(event{kind: evReady, key: m.cur.w.key})
	case phaseReplacing:
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evReplace, req: request(false)})
	case phaseProbation:
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evReplace, req: request(false)})
		m.handle(event{kind: evReady, key: m.next.w.key})
	case phaseEjecting:
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evEject, key: m.cur.w.key, reason: "health check"})
	case phaseRecycling:
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evReplace, req: request(true)})
	case phaseStopping:
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evStop})
	case phaseBackoff:
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 1}})
	case phaseStopped:
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 1}})
		m.handle(event{kind: evStop})
	}
	if m.phase != p {
		t.Fatalf("set-up for %s ended in %s", p, m.phase)
	}
	fx.calls = nil
	return m, fx
}

// eventFor builds the event a table label names, for machine m.
func eventFor(m *machine, label string) event {
	name, onNew := strings.CutSuffix(label, " (new)")
	name, stopFirst := strings.CutSuffix(name, " (stop first)")
	ev := event{key: 999_999} // a worker the slot never had, when it has none
	for k := eventKind(0); k < eventCount; k++ {
		if k.String() == name {
			ev.kind = k
		}
	}
	switch {
	case onNew && m.next != nil:
		ev.key = m.next.w.key
	case m.cur != nil:
		ev.key = m.cur.w.key
	}
	switch ev.kind {
	case evExit:
		ev.exit = Exit{Code: 1}
	case evEject, evRecycle:
		ev.reason = "test"
	case evKill:
		ev.detail = "test"
	case evStartFailed:
		ev.err = errors.New("no such file")
	case evReplace:
		ev.key, ev.req = 0, request(stopFirst)
	}
	return ev
}

type tableRow struct{ from, event, to string }

// docTable reads the table of states and events from the package doc.
func docTable(t *testing.T) []tableRow {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var rows []tableRow
	in := false
	cols := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(line, "//\t") {
			if in {
				break
			}
			continue
		}
		f := cols.Split(strings.TrimPrefix(line, "//\t"), 4)
		if f[0] == "state" {
			in = true
			continue
		}
		if in && len(f) == 4 {
			rows = append(rows, tableRow{f[0], f[1], f[2]})
		}
	}
	if len(rows) < 20 {
		t.Fatalf("found %d rows in doc.go's table", len(rows))
	}
	return rows
}

func phaseNamed(t *testing.T, name string) phase {
	for p := phase(0); p < phaseCount; p++ {
		if p.String() == name {
			return p
		}
	}
	t.Fatalf("the doc's table names an unknown state %q", name)
	return 0
}

// labels are every event label the walk fires: each event, and the
// variants the table distinguishes.
func labels() []string {
	var out []string
	for k := eventKind(0); k < eventCount; k++ {
		out = append(out, k.String())
		if aboutWorker(k) {
			out = append(out, k.String()+" (new)")
		}
	}
	return append(out, "replace (stop first)")
}

// TestMachineFollowsTheDocTable drives a slot through every event in every
// state and checks the next state against the package doc's table; an event
// the table does not list must change nothing.
func TestMachineFollowsTheDocTable(t *testing.T) {
	want := map[[2]string]string{}
	for _, r := range docTable(t) {
		from := phaseNamed(t, r.from)
		phaseNamed(t, r.to)
		known := false
		for _, l := range labels() {
			known = known || l == r.event
		}
		if !known {
			t.Errorf("the doc's table names an unknown event %q", r.event)
		}
		if _, dup := want[[2]string{r.from, r.event}]; dup {
			t.Errorf("the doc's table lists %s / %s twice", r.from, r.event)
		}
		want[[2]string{from.String(), r.event}] = r.to
	}
	for p := phase(0); p < phaseStopped+1; p++ {
		for _, label := range labels() {
			m, fx := machineIn(t, p)
			if strings.HasSuffix(label, " (new)") && m.next == nil {
				continue // no replacement starts in this state
			}
			ev := eventFor(m, label)
			m.handle(ev)
			answered := ev.req != nil && len(ev.req.done) > 0
			to, listed := want[[2]string{p.String(), label}]
			if !listed && label == "replace (stop first)" {
				to, listed = want[[2]string{p.String(), "replace"}] // the same but where the table tells them apart
			}
			switch {
			case listed && m.phase.String() != to:
				t.Errorf("%s + %s: now %s, the table says %s", p, label, m.phase, to)
			case !listed && m.phase != p:
				t.Errorf("%s + %s: now %s, the table lists no change", p, label, m.phase)
			case !listed && (len(fx.calls) > 0 || answered):
				t.Errorf("%s + %s: the table lists nothing, the slot did %v (answered: %v)", p, label, fx.calls, answered)
			}
		}
	}
}

// TestMachineIgnoresOtherWorkers checks that, in every state, an event
// about a worker that is not the slot's changes nothing.
func TestMachineIgnoresOtherWorkers(t *testing.T) {
	for p := phase(0); p < phaseCount; p++ {
		for k := eventKind(0); k < eventCount; k++ {
			if !aboutWorker(k) && k != evSample && k != evHealth && k != evOutOfRotation {
				continue
			}
			m, fx := machineIn(t, p)
			before := m.rec
			m.handle(event{kind: k, key: 999_999, exit: Exit{Code: 1}, reason: "stale"})
			if m.phase != p || len(fx.calls) > 0 || m.rec.lastReason != before.lastReason ||
				m.rec.restarts != before.restarts {
				t.Errorf("%s + %s about another worker: now %s, did %v, record %+v",
					p, k, m.phase, fx.calls, m.rec)
			}
		}
	}
}

// TestMachineEjectDuringReplacement: the serving worker is ejected while
// its replacement starts. The ejection ends that worker only.
func TestMachineEjectDuringReplacement(t *testing.T) {
	m, fx := machineIn(t, phaseReplacing)
	old, nw := m.cur.w.key, m.next.w.key
	req := m.req
	m.handle(event{kind: evEject, key: old, reason: "health check"})
	if m.phase != phaseStarting || m.cur.w.key != nw {
		t.Fatalf("after the eject: %s with worker %d, want starting with the replacement %d", m.phase, m.cur.w.key, nw)
	}
	m.handle(event{kind: evEject, key: old, reason: "health check"}) // again, late
	m.handle(event{kind: evReady, key: nw})
	if m.phase != phaseReady || m.cur.w.key != nw {
		t.Fatalf("the replacement is %s", m.phase)
	}
	if err := <-req.done; err != nil {
		t.Errorf("the replacement was answered %v", err)
	}
	m.handle(event{kind: evExit, key: old, exit: Exit{Code: 0}})
	if m.rec.lastReason != "health check" || m.rec.restarts != 1 || m.phase != phaseReady {
		t.Errorf("the ejected worker's exit: %+v in %s", m.rec, m.phase)
	}
	m.handle(event{kind: evExit, key: nw, exit: Exit{Code: -1, Signal: syscall.SIGKILL}})
	if m.rec.lastReason != "crash" || m.phase != phaseBackoff {
		t.Errorf("the replacement's crash: %+v in %s", m.rec, m.phase)
	}
	if fx.counts["health check"] != 1 || fx.counts["crash"] != 1 {
		t.Errorf("counted %v", fx.counts)
	}
}

// TestMachineStopFirstDuringReplacement: the memory guard asks a worker
// whose replacement is still starting to stop at once. It drains and
// stops as a replaced worker (counted as max-memory, its reason kept);
// the replacement becomes the slot's worker and answers the replacer
// once ready.
func TestMachineStopFirstDuringReplacement(t *testing.T) {
	m, fx := machineIn(t, phaseReplacing)
	old, nw := m.cur.w.key, m.next.w.key
	req := m.req
	urgent := &replaceRequest{key: old, reason: "max-memory", detail: "memory: would reach the hard limit", stopFirst: true}
	m.handle(event{kind: evReplace, req: urgent})
	if m.phase != phaseStarting || m.cur.w.key != nw || m.retiring[old] == nil {
		t.Fatalf("after the stop: %s with worker %d, want starting with the replacement %d", m.phase, m.cur.w.key, nw)
	}
	if want := []string{fmt.Sprintf("drain %d", old), fmt.Sprintf("halt %d %d", old, haltRetire)}; strings.Join(fx.calls, ",") != strings.Join(want, ",") {
		t.Errorf("did %v, want %v", fx.calls, want)
	}
	m.handle(event{kind: evExit, key: old, exit: Exit{Code: 0}})
	if m.rec.lastReason != urgent.detail || m.rec.replaced != 1 || m.rec.restarts != 0 || fx.counts["max-memory"] != 1 {
		t.Errorf("the old worker's exit: %+v, counted %v", m.rec, fx.counts)
	}
	m.handle(event{kind: evReady, key: nw})
	if m.phase != phaseReady {
		t.Fatalf("the replacement is %s", m.phase)
	}
	if err := <-req.done; err != nil {
		t.Errorf("the replacement was answered %v", err)
	}
}

// TestMachineCrashDuringDrain: a worker that dies while it drains ends the
// drain as its phase says.
func TestMachineCrashDuringDrain(t *testing.T) {
	for _, c := range []struct {
		p      phase
		to     phase
		reason string
	}{
		{phaseEjecting, phaseBackoff, "health check"},
		{phaseRecycling, phaseStarting, "reload"},
		{phaseStopping, phaseStopped, "stopped"},
	} {
		m, _ := machineIn(t, c.p)
		req := m.req
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: -1, Signal: syscall.SIGSEGV}})
		if m.phase != c.to || m.rec.lastReason != c.reason || m.rec.lastExit.Signal != syscall.SIGSEGV {
			t.Errorf("%s + crash: %s, %+v; want %s, %q", c.p, m.phase, m.rec, c.to, c.reason)
		}
		if req != nil {
			if err := <-req.done; err != nil {
				t.Errorf("%s + crash: the replacement was answered %v", c.p, err)
			}
		}
	}
}

// TestMachineStopDuringBackoff: a stop while the slot waits to restart
// ends the slot without a start.
func TestMachineStopDuringBackoff(t *testing.T) {
	m, fx := machineIn(t, phaseBackoff)
	m.handle(event{kind: evStop})
	m.handle(event{kind: evBackoffOver}) // the timer fired meanwhile
	if m.phase != phaseStopped || !m.finished() || len(fx.calls) > 0 {
		t.Errorf("after stop in backoff: %s, did %v", m.phase, fx.calls)
	}
}

// TestMachineGivesUpOnCrashLoop: starts that keep failing while no other
// slot serves end in a CrashLoopError.
func TestMachineGivesUpOnCrashLoop(t *testing.T) {
	m, fx := newTestMachine()
	m.cfg.MaxBootFailures = 3
	m.start()
	for i := 0; i < 3 && m.phase == phaseStarting; i++ {
		m.cur.w.tail.add([]byte("fatal: config missing"))
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 7}})
		if m.phase == phaseBackoff {
			m.handle(event{kind: evBackoffOver})
		}
	}
	if m.phase != phaseStopped || fx.gaveUp == nil || fx.gaveUp.Attempts != 3 ||
		!strings.Contains(fx.gaveUp.Last, "exit code 7") || len(fx.gaveUp.Output) == 0 {
		t.Fatalf("after 3 failed starts: %s, gave up %+v", m.phase, fx.gaveUp)
	}
	if m.rec.restarts != 2 {
		t.Errorf("restarts = %d, want 2", m.rec.restarts)
	}
}

// TestMachineMinUptimeCountsFromReadiness: a worker that took 10 s to
// start and exits right after it became ready fails its start, and such
// failures in a row end in a CrashLoopError; one that served longer than
// MinUptime crashed.
func TestMachineMinUptimeCountsFromReadiness(t *testing.T) {
	m, fx := newTestMachine()
	m.cfg.MinUptime, m.cfg.MaxBootFailures = time.Second, 3
	m.start()
	for i := 0; i < 3 && m.phase == phaseStarting; i++ {
		m.cur.w.started = time.Now().Add(-10 * time.Second)
		m.handle(event{kind: evReady, key: m.cur.w.key})
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 1}})
		if m.rec.lastReason != "boot failure" || m.rec.bootFailures != i+1 {
			t.Fatalf("exit %d: %+v", i+1, m.rec)
		}
		if m.phase == phaseBackoff {
			m.handle(event{kind: evBackoffOver})
		}
	}
	if m.phase != phaseStopped || fx.gaveUp == nil || fx.gaveUp.Attempts != 3 {
		t.Fatalf("after 3 exits right after ready: %s, gave up %+v", m.phase, fx.gaveUp)
	}

	m, fx = newTestMachine()
	m.cfg.MinUptime, m.cfg.MaxBootFailures = time.Second, 1
	m.start()
	m.handle(event{kind: evReady, key: m.cur.w.key})
	m.cur.readyAt = time.Now().Add(-2 * time.Second)
	m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 1}})
	if m.phase != phaseBackoff || m.rec.lastReason != "crash" || m.rec.bootFailures != 0 || fx.gaveUp != nil {
		t.Errorf("exit 2s after ready: %s, %+v, gave up %+v", m.phase, m.rec, fx.gaveUp)
	}
}

// TestMachineMemoryLoopBacksOff: a worker over its memory budget soon
// after it became ready, as was the worker before it, is in a memory loop:
// its recycling waits the slot's backoff, which doubles, unless it keeps
// growing towards the hard limit; it is counted as a memory loop and a
// restart. A worker that served longer than Guard.Loop first is recycled
// at once and starts the backoff over.
func TestMachineMemoryLoopBacksOff(t *testing.T) {
	const mib = 1 << 20
	m, fx := newTestMachine()
	m.cfg.Guard = Guard{Budget: 100 * mib, Hard: 200 * mib, Every: time.Second}
	m.cfg.Guard.setDefaults()
	m.cfg.BackoffMin = 100 * time.Millisecond
	m.start()
	over := func(rss uint64) {
		key := m.cur.w.key
		m.handle(event{kind: evSample, key: key, mem: rss, measure: MeasurePSS})
		m.handle(event{kind: evRecycle, key: key, reason: EndMaxMemory, detail: m.cfg.Guard.overBudget(rss, MeasurePSS)})
	}
	recycled := func() {
		t.Helper()
		m.handle(event{kind: evReplace, req: &replaceRequest{key: m.cur.w.key, reason: fx.recycles[len(fx.recycles)-1].reason,
			detail: fx.recycles[len(fx.recycles)-1].detail, stopFirst: true, done: make(chan error, 1)}})
		m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: 0}})
		m.handle(event{kind: evReady, key: m.cur.w.key})
		if m.phase != phaseReady {
			t.Fatalf("after the recycling: %s", m.phase)
		}
	}
	m.handle(event{kind: evReady, key: m.cur.w.key})
	over(103 * mib) // the first worker over its budget soon: recycled at once
	if len(fx.recycles) != 1 || fx.recycles[0].reason != EndMaxMemory {
		t.Fatalf("first worker over budget: queued %+v", fx.recycles)
	}
	recycled()
	if m.rec.replaced != 1 || m.rec.restarts != 0 {
		t.Errorf("a first recycling counted %+v", m.rec)
	}

	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		over(103 * mib) // over as soon again: a memory loop, held
		if len(fx.recycles) != i+1 {
			t.Fatalf("loop %d: recycled at once: %+v", i+1, fx.recycles)
		}
		if held := time.Until(m.cur.hold); held <= want-50*time.Millisecond || held > want {
			t.Errorf("loop %d: held for %s, want %s", i+1, held, want)
		}
		over(104 * mib) // later samples while held change nothing
		m.cur.hold = time.Now().Add(-time.Millisecond)
		over(103 * mib) // the backoff has passed
		r := fx.recycles[len(fx.recycles)-1]
		if len(fx.recycles) != i+2 || r.reason != EndMemoryLoop ||
			!strings.HasPrefix(r.detail, "memory loop: pss 103.0MiB over budget 100.0MiB ") {
			t.Fatalf("loop %d: after the backoff queued %+v", i+1, fx.recycles)
		}
		recycled()
	}
	if fx.counts[EndMemoryLoop] != 3 || m.rec.restarts != 3 || m.rec.replaced != 1 ||
		!strings.HasPrefix(m.rec.lastReason, "memory loop: pss") {
		t.Errorf("after three loops: counted %v, %+v", fx.counts, m.rec)
	}

	over(103 * mib) // held again, then growing past half-way to the hard limit
	n := len(fx.recycles)
	over(151 * mib)
	if len(fx.recycles) != n+1 || fx.recycles[n].reason != EndMemoryLoop {
		t.Fatalf("a held worker that grows: queued %+v", fx.recycles[n:])
	}
	recycled()

	m.cur.readyAt = time.Now().Add(-time.Minute) // served longer than Guard.Loop
	over(103 * mib)
	if r := fx.recycles[len(fx.recycles)-1]; len(fx.recycles) != n+2 || r.reason != EndMaxMemory {
		t.Fatalf("a worker over budget after a minute: queued %+v", fx.recycles[n:])
	}
	if m.backoff != m.cfg.BackoffMin || m.memLoops != 0 {
		t.Errorf("the loop did not start over: backoff %s, %d in a row", m.backoff, m.memLoops)
	}
}

// TestMachineMemoryLoopOfGrowingWorkers: workers that the memory guard
// recycles early for their growth, each soon after it became ready, are in
// a memory loop too, counted as one, but their recycling never waits for
// the backoff: each would reach its budget meanwhile.
func TestMachineMemoryLoopOfGrowingWorkers(t *testing.T) {
	m, fx := newTestMachine()
	m.cfg.Guard = Guard{Budget: 100 * mib, Hard: 200 * mib, Every: time.Second}
	m.cfg.Guard.setDefaults()
	m.start()
	m.handle(event{kind: evReady, key: m.cur.w.key})
	for i := range 3 {
		key := m.cur.w.key
		m.handle(event{kind: evSample, key: key, mem: 80 * mib, measure: MeasurePSS})
		m.handle(event{kind: evRecycle, key: key, reason: EndMaxMemory, early: true,
			detail: m.cfg.Guard.early(80*mib, MeasurePSS, 80*mib, time.Second)})
		if len(fx.recycles) != i+1 {
			t.Fatalf("growing worker %d: queued %+v", i+1, fx.recycles)
		}
		r, want := fx.recycles[i], EndMaxMemory
		if i > 0 {
			want = EndMemoryLoop
		}
		if r.reason != want || !strings.Contains(r.detail, "recycled early") {
			t.Errorf("growing worker %d: queued %+v, want %s", i+1, r, want)
		}
		m.handle(event{kind: evReplace, req: &replaceRequest{key: key, reason: r.reason, detail: r.detail,
			stopFirst: true, done: make(chan error, 1)}})
		m.handle(event{kind: evExit, key: key, exit: Exit{Code: 0}})
		m.handle(event{kind: evReady, key: m.cur.w.key})
	}
	if fx.counts[EndMemoryLoop] != 2 || fx.counts[EndMaxMemory] != 1 || m.rec.restarts != 2 || m.rec.replaced != 1 {
		t.Errorf("after three growing workers: counted %v, %+v", fx.counts, m.rec)
	}
}

// TestMachineGivesUpOnARefusalAtOnce: a start that cannot succeed as the
// command stands (the preload's refusal code, a process listening on PORT
// itself) ends in a CrashLoopError at its first attempt, unless another
// slot serves; the same exit code means nothing without RefusedExitCode.
func TestMachineGivesUpOnARefusalAtOnce(t *testing.T) {
	own := &ownListenerError{pid: 42, command: "node server.js"}
	for _, c := range []struct {
		name      string
		code      int
		notReady  error
		elsewhere bool
		refused   bool
		last      string
	}{
		{"preload's code", 78, nil, false, true, "percore's preload refused it (exit code 78)"},
		{"own listener", 78, own, false, true, "a child process of the worker (pid 42: node server.js) listens on PORT"},
		{"another slot serves", 78, nil, true, false, ""},
		{"another code", 77, nil, false, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, fx := newTestMachine()
			m.cfg.RefusedExitCode = 78
			fx.elsewhere = c.elsewhere
			m.start()
			if c.notReady != nil {
				m.handle(event{kind: evNotReady, key: m.cur.w.key, err: c.notReady})
			}
			m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: c.code}})
			if !c.refused {
				if m.phase != phaseBackoff || fx.gaveUp != nil {
					t.Errorf("after the exit: %s, gave up %+v; want backoff", m.phase, fx.gaveUp)
				}
				return
			}
			if m.phase != phaseStopped || fx.gaveUp == nil || !fx.gaveUp.Refused || fx.gaveUp.Attempts != 1 ||
				!strings.HasPrefix(fx.gaveUp.Last, c.last) {
				t.Fatalf("after a refused start: %s, gave up %+v", m.phase, fx.gaveUp)
			}
			if msg := fx.gaveUp.Error(); !strings.HasPrefix(msg, "the app cannot run as started: worker 0 was refused: "+c.last) {
				t.Errorf("error %q", msg)
			}
		})
	}
}

// TestMachineShortageIsNotAFailedStart: a spawn or readiness check that
// fails for lack of descriptors backs off without counting a failed start.
func TestMachineShortageIsNotAFailedStart(t *testing.T) {
	m, fx := newTestMachine()
	fx.spawnErr = fmt.Errorf("pipe2: %w", syscall.EMFILE)
	m.start()
	if m.phase != phaseBackoff || m.rec.bootFailures != 0 || !strings.HasPrefix(m.rec.lastReason, EndShortage.String()) {
		t.Fatalf("after a spawn shortage: %s, %+v", m.phase, m.rec)
	}
	fx.spawnErr = nil
	m.handle(event{kind: evBackoffOver})
	m.handle(event{kind: evShortage, key: m.cur.w.key, err: syscall.EMFILE})
	m.handle(event{kind: evExit, key: m.cur.w.key, exit: Exit{Code: -1, Signal: syscall.SIGKILL}})
	if m.phase != phaseBackoff || m.rec.bootFailures != 0 {
		t.Errorf("after a readiness shortage: %s, %+v", m.phase, m.rec)
	}
}

// TestMachineReplacementFailureKeepsWorker: a replacement that exits at
// boot fails the request, and the serving worker keeps serving. The error
// says why in percore's words; the new worker's output goes with it apart,
// for the log, never in its text (which /status shows).
func TestMachineReplacementFailureKeepsWorker(t *testing.T) {
	m, _ := machineIn(t, phaseReplacing)
	old, req := m.cur.w.key, m.req
	m.next.w.tail.add([]byte("new code is broken"))
	m.handle(event{kind: evExit, key: m.next.w.key, exit: Exit{Code: 1}})
	err := <-req.done
	if err == nil || !strings.Contains(err.Error(), "boot failure (exit code 1)") || strings.Contains(err.Error(), "broken") {
		t.Errorf("the replacement was answered %v", err)
	}
	if out := newWorkerOutput(err); len(out) != 1 || out[0] != "new code is broken" {
		t.Errorf("the new worker's output for the log: %q", out)
	}
	if m.phase != phaseReady || m.cur.w.key != old || m.rec.lastExit != nil {
		t.Errorf("after the failed replacement: %s, worker %d, %+v", m.phase, m.cur.w.key, m.rec)
	}
}

// TestMachineReplaceWhileStartingWaits: a reload that arrives while the
// worker starts replaces it once it is ready.
func TestMachineReplaceWhileStartingWaits(t *testing.T) {
	m, _ := newTestMachine()
	m.start()
	req := request(false)
	m.handle(event{kind: evReplace, req: req})
	m.handle(event{kind: evReady, key: m.cur.w.key})
	if m.phase != phaseReplacing {
		t.Fatalf("after ready: %s, want replacing", m.phase)
	}
	m.handle(event{kind: evReady, key: m.next.w.key})
	m.handle(event{kind: evProbationOver, key: m.next.w.key})
	old := m.retiringKey(t)
	m.handle(event{kind: evExit, key: old})
	if err := <-req.done; err != nil || m.rec.replaced != 1 || m.rec.lastReason != "reload" {
		t.Errorf("answered %v; %+v", err, m.rec)
	}
}

func (m *machine) retiringKey(t *testing.T) uint64 {
	t.Helper()
	for k := range m.retiring {
		return k
	}
	t.Fatal("no worker retires")
	return 0
}

// TestMachineRecordsMeasurements: sample, health and out-of-rotation
// events record on the current worker and start afresh with the next.
func TestMachineRecordsMeasurements(t *testing.T) {
	m, _ := machineIn(t, phaseReady)
	if m.cur.mem != 42<<20 || m.cur.measure != MeasurePSS {
		t.Errorf("memory at ready = %d by %s, want it measured", m.cur.mem, m.cur.measure)
	}
	key := m.cur.w.key
	until := time.Now().Add(time.Hour)
	m.handle(event{kind: evSample, key: key, mem: 7, measure: MeasureRSS})
	m.handle(event{kind: evHealth, key: key, n: 2})
	m.handle(event{kind: evOutOfRotation, key: key, until: until})
	if m.cur.mem != 7 || m.cur.measure != MeasureRSS || m.cur.healthFails != 2 || !m.cur.outUntil.Equal(until) {
		t.Errorf("recorded %+v", m.cur)
	}
	sl := newSlot(0)
	sl.publish(m)
	if ws := sl.status(time.Now()); ws.NotRouted != NotRoutedEjected || ws.State != StateReady {
		t.Errorf("out of rotation shows %+v", ws)
	}
	if ws := sl.status(until.Add(time.Second)); ws.NotRouted != "" {
		t.Errorf("after the ejection ends: %q", ws.NotRouted)
	}
	m.handle(event{kind: evExit, key: key, exit: Exit{Code: 1}})
	m.handle(event{kind: evBackoffOver})
	if m.cur.mem != 0 || m.cur.healthFails != 0 || !m.cur.outUntil.IsZero() {
		t.Errorf("the next worker inherited %+v", m.cur)
	}
}

// TestMachineProbationFailureKeepsWorker: a replacement that exits on
// probation, after it took requests beside the old worker, fails the
// request; the old worker, which never stopped serving, keeps serving. The
// error says why in percore's words, never with the new worker's output.
func TestMachineProbationFailureKeepsWorker(t *testing.T) {
	m, fx := machineIn(t, phaseReplacing)
	old, nw, req := m.cur.w.key, m.next.w.key, m.req
	m.handle(event{kind: evReady, key: nw})
	if m.phase != phaseProbation || m.cur.w.key != old {
		t.Fatalf("after the replacement is ready: %s with worker %d, want probation with %d", m.phase, m.cur.w.key, old)
	}
	want := []string{fmt.Sprintf("route %d", nw), fmt.Sprintf("probation %d 3s", nw)}
	if strings.Join(fx.calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("on probation the slot did %v, want %v", fx.calls, want)
	}
	if len(req.done) > 0 {
		t.Fatal("the replacement was answered before its probation was over")
	}
	fx.calls = nil
	m.next.w.tail.add([]byte("ECONNREFUSED db:5432"))
	m.handle(event{kind: evExit, key: nw, exit: Exit{Code: 1}})
	err := <-req.done
	if err == nil || !strings.Contains(err.Error(), "died on probation (exit code 1)") ||
		!strings.Contains(err.Error(), "within its 3s probation") || strings.Contains(err.Error(), "ECONNREFUSED") {
		t.Errorf("the replacement was answered %v", err)
	}
	if out := newWorkerOutput(err); len(out) != 1 {
		t.Errorf("the new worker's output for the log: %q", out)
	}
	if msg := failedReloadMessage(err, nil); !strings.HasPrefix(msg, "RELOAD FAILED: a new worker failed its probation: ") {
		t.Errorf("the log says %q", msg)
	}
	want = []string{fmt.Sprintf("cleanup %d", nw), fmt.Sprintf("drain %d", nw)}
	if strings.Join(fx.calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("after the replacement died the slot did %v, want %v (the old worker untouched)", fx.calls, want)
	}
	if m.phase != phaseReady || m.cur.w.key != old || !m.cur.routed || m.next != nil || m.rec.lastExit != nil {
		t.Errorf("after the failed probation: %s, worker %d routed %v, %+v", m.phase, m.cur.w.key, m.cur.routed, m.rec)
	}
	m.handle(event{kind: evProbationOver, key: nw}) // the timer fired meanwhile
	if m.phase != phaseReady || m.cur.w.key != old || len(m.retiring) > 0 {
		t.Errorf("a late end of the probation moved the slot: %s, worker %d", m.phase, m.cur.w.key)
	}
}

// TestMachineProbationOverRetiresWorker: once the replacement has served
// for the probation, the old worker drains and stops, and the replacement
// is answered when it is gone.
func TestMachineProbationOverRetiresWorker(t *testing.T) {
	m, fx := machineIn(t, phaseProbation)
	old, nw, req := m.cur.w.key, m.next.w.key, m.req
	m.handle(event{kind: evProbationOver, key: nw})
	if m.phase != phaseReady || m.cur.w.key != nw || m.retiring[old] == nil {
		t.Fatalf("after the probation: %s with worker %d", m.phase, m.cur.w.key)
	}
	if want := fmt.Sprintf("halt %d %d", old, haltRetire); strings.Join(fx.calls, ", ") != want {
		t.Errorf("the slot did %v, want %s", fx.calls, want)
	}
	if len(req.done) > 0 {
		t.Fatal("answered before the old worker was gone")
	}
	m.handle(event{kind: evExit, key: old})
	if err := <-req.done; err != nil || m.rec.replaced != 1 || m.rec.lastReason != "reload" {
		t.Errorf("answered %v; %+v", err, m.rec)
	}
}

// TestMachineOldWorkerGoesDuringProbation: when the old worker exits or is
// ejected during the probation, the replacement is the slot's worker and
// the request is answered.
func TestMachineOldWorkerGoesDuringProbation(t *testing.T) {
	for _, kind := range []eventKind{evExit, evEject, evKill} {
		m, _ := machineIn(t, phaseProbation)
		old, nw, req := m.cur.w.key, m.next.w.key, m.req
		m.handle(event{kind: kind, key: old, exit: Exit{Code: 1}, reason: EndHealthCheck, detail: "memory: over"})
		if m.phase != phaseReady || m.cur.w.key != nw || m.next != nil {
			t.Errorf("%s of the old worker: %s with worker %d", kind, m.phase, m.cur.w.key)
		}
		if err := <-req.done; err != nil {
			t.Errorf("%s of the old worker: answered %v", kind, err)
		}
		if kind != evExit {
			m.handle(event{kind: evExit, key: old, exit: Exit{Code: 0}})
		}
		if m.rec.restarts != 1 || m.phase != phaseReady {
			t.Errorf("%s of the old worker: %+v in %s", kind, m.rec, m.phase)
		}
	}
}

// TestMachineWithoutProbation: with Probation 0, and for a recycling, whose
// replacement runs the code that already serves, the replacement takes over
// as soon as it is ready.
func TestMachineWithoutProbation(t *testing.T) {
	for _, c := range []struct {
		name      string
		probation time.Duration
		reload    bool
	}{{"probation 0", 0, true}, {"recycling", 3 * time.Second, false}} {
		m, fx := machineIn(t, phaseReady)
		m.cfg.Probation = c.probation
		old := m.cur.w.key
		req := request(false)
		req.probation = c.reload
		m.handle(event{kind: evReplace, req: req})
		nw := m.next.w.key
		fx.calls = nil
		m.handle(event{kind: evReady, key: nw})
		want := []string{fmt.Sprintf("route %d", nw), fmt.Sprintf("halt %d %d", old, haltRetire)}
		if m.phase != phaseReady || m.cur.w.key != nw || strings.Join(fx.calls, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: %s with worker %d, did %v; want ready with %d, %v", c.name, m.phase, m.cur.w.key, fx.calls, nw, want)
		}
	}
}
