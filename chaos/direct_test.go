//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The direct-mode scenarios run percore with --mode direct: the kernel hands
// each connection to a worker's slot socket, and nothing retries a request.
// Their load separates new connections (connect and one request) from
// requests on established keep-alive connections, and sorts failures into
// refused, reset, timeout and other.

// startDirectLoad starts the load of a direct-mode scenario: stream 0 opens
// a new connection for every request, at a steady pace; streams 1 and 2 are
// keep-alive clients.
func startDirectLoad(t *testing.T, addr string) *load {
	return startLoad(t, addr,
		stream{name: "GET / on a new connection", clients: 4, req: get("/"), fresh: true, pace: 2 * time.Millisecond},
		stream{name: "GET / keep-alive", clients: 4, req: get("/"), pace: 2 * time.Millisecond},
		stream{name: "GET /slow?ms=50 keep-alive", clients: 2, req: get("/slow?ms=50")},
	)
}

// fresh keeps the requests sent on a new connection: the first one of a
// connection, whichever stream sent it.
func fresh(r record) bool { return !r.reused }

// established keeps the requests sent on a keep-alive connection that had
// served before.
func established(r record) bool { return r.reused }

// failClass sorts a failed request into refused, reset, timeout or other.
func failClass(r record) string {
	switch {
	case r.out == outRefused:
		return "refused"
	case r.out == outTimeout:
		return "timeout"
	case r.out == outReset || r.rst:
		return "reset"
	}
	return "other"
}

// countByClass is count with the failures keyed by failClass.
func countByClass(recs []record, keep func(record) bool) tally {
	return countBy(recs, keep, failClass)
}

// both keeps the records that every keep keeps.
func both(keeps ...func(record) bool) func(record) bool {
	return func(r record) bool {
		for _, k := range keeps {
			if !k(r) {
				return false
			}
		}
		return true
	}
}

// addConnFigures reports the new connections and the keep-alive requests
// apart, with their failures by class and the new connections' waits.
func addConnFigures(f *figures, recs []record) (newT, keptT tally) {
	newT, keptT = countByClass(recs, fresh), countByClass(recs, established)
	waited := count(recs, func(r record) bool { return fresh(r) && r.latency > time.Second })
	f.add("new connections: %d, %d failed (%s), %d waited over 1s, longest %s", newT.sent, newT.failed(),
		newT.reasonsText(), waited.sent, ms(maxLatency(recs, fresh)))
	f.add("keep-alive requests: %d, %d failed (%s)", keptT.sent, keptT.failed(), keptT.reasonsText())
	var failed []string
	for _, r := range recs {
		if fresh(r) && r.out != outOK && len(failed) < 5 {
			failed = append(failed, fmt.Sprintf("%s %s→%s", failClass(r), ms(r.start), ms(r.end())))
		}
	}
	if len(failed) > 0 {
		f.add("failed new connections (load's clock): %s", strings.Join(failed, ", "))
	}
	return newT, keptT
}

// wantNoneRefusedOrReset fails the test for new connections refused or reset.
func wantNoneRefusedOrReset(t *testing.T, newT tally) {
	t.Helper()
	if n := newT.reasons["refused"] + newT.reasons["reset"]; n > 0 {
		t.Errorf("%d of %d new connections were refused or reset (%s)", n, newT.sent, newT.reasonsText())
	}
}

// waitEverySlotServes opens new connections until each of the ready workers
// has answered one, and reports the pids that did not.
func waitEverySlotServes(in *instance, pids []int) []int {
	left := slices.Clone(pids)
	for i := 0; i < 400 && len(left) > 0; i++ {
		r := once(in.addr, request{method: "GET", path: "/"}, 5*time.Second)
		left = slices.DeleteFunc(left, func(p int) bool { return p == int(r.pid) })
	}
	return left
}

// startDirect runs percore in direct mode with n node workers.
func startDirect(t *testing.T, n int, opts options, args ...string) *instance {
	t.Helper()
	opts.direct = true
	opts.args = append(append([]string{"--workers", strconv.Itoa(n)}, args...), "--", "node", appPath("app.js"))
	return start(t, n, opts)
}

// TestDirectKillStorm SIGKILLs a random ready worker's process group every
// 300 ms. New connections go to the live workers while a slot has none, and
// those queued on the killed worker's socket are passed on to one, so no new
// connection opened after a kill is refused or reset; the requests in flight on the killed worker fail, as with the
// cluster module, and are counted. Every slot serves again afterwards.
func TestDirectKillStorm(t *testing.T) {
	f := book.row(t, "13a", "direct mode: `kill -9` a random worker every 300 ms")
	needNode(t)
	const workers = 2
	length := 6 * time.Second
	if testing.Short() {
		length = 3 * time.Second
	}
	in := startDirect(t, workers, options{})
	l := startDirectLoad(t, in.addr)
	time.Sleep(300 * time.Millisecond)

	seed := uint64(time.Now().UnixNano())
	ks := killStorm(t, in, l, rand.New(rand.NewPCG(seed, 0xd1ec7)), 300*time.Millisecond, length, workers)
	kills, skipped, st, whole, wholeAfter := ks.kills, ks.skipped, ks.st, ks.whole, ks.wholeAfter
	silent := waitEverySlotServes(in, st.readyPids())
	recs := l.stop()

	f.requests(count(recs, nil))
	// A request on a connection that a kill found open may have been
	// accepted by the killed worker: its failure is the cluster module's too.
	caught := func(r record) bool {
		return slices.ContainsFunc(kills, func(k time.Duration) bool { return r.start <= k && r.end() >= k })
	}
	notCaught := func(r record) bool { return !caught(r) }
	f.add("%d kills (seed %d), %d ticks without a ready worker; pool whole %s after the last kill",
		len(kills), seed, skipped, wholeAfter.Round(100*time.Millisecond))
	newT, _ := addConnFigures(f, recs)
	caughtT := countByClass(recs, both(fresh, caught))
	f.add("new connections open at a kill: %d, %d failed (%s)", caughtT.sent, caughtT.failed(), caughtT.reasonsText())

	// The new connections a kill found open may fail with the worker that
	// accepted them; every other new connection must not.
	afterT := countByClass(recs, both(fresh, notCaught))
	if afterT.failed() > 0 {
		t.Errorf("%d of %d new connections opened with no kill during them failed (%s)",
			afterT.failed(), afterT.sent, afterT.reasonsText())
	}
	if n := newT.reasons["refused"]; n > 0 {
		t.Errorf("%d new connections were refused: the slot's socket must stay open across its worker's death", n)
	}
	if !whole {
		t.Errorf("the pool is not whole %s after the last kill: %+v", wholeAfter, st.Workers)
	}
	if len(silent) > 0 {
		t.Errorf("workers %v answered none of 400 new connections after the storm", silent)
	}
	if len(kills) == 0 {
		t.Error("no worker was killed")
	}
}

// TestDirectReloadLoop runs rolling reloads back to back under load. A
// reload starts each new worker on its slot's socket before the old one
// stops accepting, so no new connection fails. The app stops itself on
// SIGTERM the common way (server.close, then exit); percore's preload makes
// the old worker's later answers end their keep-alive connections and closes
// the ones quiet for a second, so the old workers exit 0 by themselves. The
// keep-alive requests that meet a close are counted.
func TestDirectReloadLoop(t *testing.T) {
	f := book.row(t, "13b", "direct mode: `SIGHUP` rolling reloads back to back")
	needNode(t)
	const workers = 2
	reloads := 4
	if testing.Short() {
		reloads = 2
	}
	in := startDirect(t, workers, options{})
	before := in.waitReady(workers, 10*time.Second).readyPids()
	l := startDirectLoad(t, in.addr)
	time.Sleep(300 * time.Millisecond)
	from := in.logCount()
	var took []time.Duration
	for range reloads {
		mark := in.logCount()
		began := time.Now()
		in.signal(syscall.SIGHUP)
		done := in.waitLog("reload done", mark, 30*time.Second)
		took = append(took, done.at.Sub(began))
	}
	time.Sleep(300 * time.Millisecond)
	recs := l.stop()
	st := in.waitReady(workers, 10*time.Second)

	f.requests(count(recs, nil))
	slices.Sort(took)
	exits := tally{reasons: map[string]int{}}
	for _, l := range in.logsMatching("worker stopped", from) {
		exits.reasons[fmt.Sprint(l.m["exit"])]++
	}
	f.add("%d reloads, each %s–%s", reloads, took[0].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond))
	f.add("old workers stopped: %s", exits.reasonsText())
	newT, _ := addConnFigures(f, recs)

	if newT.failed() > 0 || newT.ok == 0 {
		t.Errorf("%d of %d new connections failed during reloads (%s)", newT.failed(), newT.sent, newT.reasonsText())
	}
	for exit, n := range exits.reasons {
		if exit != "exit code 0" {
			t.Errorf("%d old workers ended %q: a drained worker exits by itself with 0", n, exit)
		}
	}
	for _, pid := range st.readyPids() {
		if slices.Contains(before, pid) {
			t.Errorf("worker %d from before the reloads still serves", pid)
		}
	}
}

// TestDirectHungWorker makes one worker busy-loop for 8 s under load. The active health checks eject and replace it; the connections that
// the kernel queued on its socket meanwhile wait for the replacement (or for
// the hung worker to answer them as it drains), and none of them fails. A
// connection the worker had accepted just before it hung dies with it when
// it is killed, like a keep-alive one: those are counted apart. How many
// waited, and for how long, is reported.
func TestDirectHungWorker(t *testing.T) {
	f := book.row(t, "13c", "direct mode: a worker's event loop hangs (`/busy?ms=8000`)")
	needNode(t)
	const workers = 2
	// Long enough that percore kills it (2 s after the stop signal that
	// follows the ejection) before it wakes up.
	const busy = 8 * time.Second
	in := startDirect(t, workers, options{},
		"--health-interval", "1s", "--health-timeout", "1s", "--health-threshold", "2")
	l := startDirectLoad(t, in.addr)
	time.Sleep(300 * time.Millisecond)
	from := in.logCount()
	hung := in.getPid("/busy?ms=" + strconv.Itoa(int(busy.Milliseconds())))
	hungAt := l.since(time.Now()) // the loop begins right after the answer
	eject, ejected := in.awaitLog("ejecting worker", from, busy+5*time.Second)
	st, whole := in.awaitStatus(20*time.Second, func(st status) bool {
		ready := st.readyPids()
		return len(ready) == workers && !slices.Contains(ready, hung)
	})
	wholeAt := l.since(time.Now())
	time.Sleep(500 * time.Millisecond)
	recs := l.stop()

	f.requests(count(recs, nil))
	ejectedText := "never ejected"
	if ejected {
		ejectedText = "ejected " + (l.since(eject.at) - hungAt).Round(10*time.Millisecond).String() + " after it hung"
	}
	f.add("hung at %s on the load's clock, %s; pool whole again %s after", ms(hungAt), ejectedText,
		(wholeAt - hungAt).Round(100*time.Millisecond))
	addConnFigures(f, recs)
	open := func(r record) bool { return r.start < hungAt && r.end() > hungAt }
	openT := countByClass(recs, both(fresh, open))
	f.add("new connections open when it hung: %d, %d failed (%s)", openT.sent, openT.failed(), openT.reasonsText())
	lat := latencies(recs, fresh)
	f.add("new connections p50 %s p99 %s", ms(percentile(lat, 50)), ms(percentile(lat, 99)))

	if laterT := countByClass(recs, both(fresh, func(r record) bool { return !open(r) })); laterT.failed() > 0 {
		t.Errorf("%d of %d new connections opened after the worker hung failed (%s)", laterT.failed(), laterT.sent, laterT.reasonsText())
	}
	if !ejected {
		t.Errorf("the hung worker %d was not ejected", hung)
	}
	if !whole {
		t.Errorf("the pool is not whole after the hung worker: %+v", st.Workers)
	}
}

// TestDirectScaleDownUp scales 4 → 1 → 4 workers with `percore scale`
// (three times; once in -short) while new connections arrive steadily. The
// connections queued on the sockets of the slots removed must not be reset:
// no new connection is refused or reset.
func TestDirectScaleDownUp(t *testing.T) {
	f := book.row(t, "13d", "direct mode: `percore scale` 4 → 1 → 4 under load")
	needNode(t)
	dir, err := os.MkdirTemp("", "pcc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	control := filepath.Join(dir, "control.sock")
	const workers = 4
	in := startDirect(t, workers, options{control: control})
	l := startDirectLoad(t, in.addr)
	time.Sleep(300 * time.Millisecond)
	scale := func(n int) time.Duration {
		began := time.Now()
		out, err := exec.Command(percoreBin, "scale", strconv.Itoa(n), "--control", control).CombinedOutput()
		if err != nil {
			t.Fatalf("percore scale %d: %v: %s", n, err, out)
		}
		in.waitReady(n, 20*time.Second)
		return time.Since(began)
	}
	cycles := 3
	if testing.Short() {
		cycles = 1
	}
	var down, up time.Duration
	for range cycles {
		down = max(down, scale(1))
		time.Sleep(500 * time.Millisecond)
		up = max(up, scale(workers))
		time.Sleep(500 * time.Millisecond)
	}
	recs := l.stop()

	f.requests(count(recs, nil))
	f.add("%d cycles; scaled down in %s at most, up in %s", cycles, down.Round(10*time.Millisecond), up.Round(10*time.Millisecond))
	newT, _ := addConnFigures(f, recs)
	wantNoneRefusedOrReset(t, newT)
}
