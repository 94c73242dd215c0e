package examples_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// TestContainer is the container lane: the image that
// examples/docker/Dockerfile builds (with percore from the root Dockerfile,
// on a Node base image made of this machine's files) run under podman as
// users run it, `ENTRYPOINT ["percore", "--"]` as PID 1. It checks the plan
// against the sizing table of docs/sizing.md under memory and CPU limits, serving
// through published loopback ports, podman stop with a request in flight,
// a SIGHUP reload under load, the reaping of orphans, memory growth outside
// the heap in 256 MiB, a read-only root and users without a passwd entry.
func TestContainer(t *testing.T) {
	pm := needPodman(t)
	start := time.Now()
	im := buildImages(t, pm)
	t.Logf("images ready in %s", time.Since(start).Round(10*time.Millisecond))
	table := readSizingTable(t)

	t.Run("256m-1cpu", func(t *testing.T) {
		// No swap, so that memory the guard misses meets the OOM killer.
		c := pm.start(t, im.app, "--memory", "256m", "--memory-swap", "256m", "--cpus", "1",
			"--network", "slirp4netns", "--publish", "127.0.0.1::8080")
		p := c.plan()
		p.check(t, table.row(256, 1))
		base := "http://" + c.addr(8080)
		t.Run("reaping", func(t *testing.T) { checkReaping(t, c, base) })
		t.Run("memory-outside-heap", func(t *testing.T) { checkOffHeapGrowth(t, c, base) })
	})
	t.Run("512m-2cpu", func(t *testing.T) {
		needCPUs(t, 2)
		c := pm.start(t, im.app, "--memory", "512m", "--cpus", "2", "--env", "PERCORE_PROBATION=1s",
			"--network", "slirp4netns", "--publish", "127.0.0.1::8080", "--publish", "127.0.0.1::8081")
		p := c.plan()
		p.check(t, table.row(512, 2))
		base, admin := "http://"+c.addr(8080), "http://"+c.addr(8081)
		t.Run("serve", func(t *testing.T) { checkServe(t, base, admin) })
		t.Run("reload", func(t *testing.T) { checkReload(t, c, base) })
		t.Run("stop", func(t *testing.T) { checkStop(t, c, base) })
	})
	t.Run("limits", func(t *testing.T) {
		for _, lc := range limitCases(table) {
			t.Run(lc.name, func(t *testing.T) {
				t.Parallel()
				if lc.cpus > 0 {
					needCPUs(t, lc.cpus)
				}
				c := pm.start(t, im.app, append(lc.opts, "--network", "none")...)
				lc.check(t, c.plan())
			})
		}
	})
	t.Run("read-only", func(t *testing.T) {
		// podman mounts tmpfs on /tmp, /var/tmp and /run with --read-only
		// unless told not to; Docker does not.
		runServing(t, pm, im.app, "no-tmpfs", "--read-only", "--read-only-tmpfs=false")
		runServing(t, pm, im.app, "tmpfs-on-tmp", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp")
	})
	t.Run("user", func(t *testing.T) {
		runServing(t, pm, im.app, "1000", "--user", "1000")
		runServing(t, pm, im.app, "12345-no-passwd-entry", "--user", "12345")
	})
}

// needCPUs skips a test that needs n CPUs on a machine with fewer.
func needCPUs(t *testing.T, n int) {
	t.Helper()
	if runtime.NumCPU() < n {
		t.Skipf("needs %d CPUs, this machine has %d", n, runtime.NumCPU())
	}
}

// sizingRow is one row of the sizing table in docs/sizing.md.
type sizingRow struct {
	memoryMiB, cpus    int
	workers            int
	heapMiB, budgetMiB int
	machine            string // as README names it: "512 MiB, 2 CPU"
	found              bool
}

// sizingTable is the sizing table of docs/sizing.md by machine.
type sizingTable map[[2]int]sizingRow

// sizingRowLine matches a row: "| 512 MiB, 2 CPU | 2 | 147 MiB | 227 MiB | …".
var sizingRowLine = regexp.MustCompile(`^\| (\d+) (MiB|GiB), (\d+) CPU \| (\d+)[^|]*\| (\d+) MiB \| (\d+) MiB \|`)

// readSizingTable reads the sizing table from docs/sizing.md.
func readSizingTable(t *testing.T) sizingTable {
	t.Helper()
	f, err := os.Open("../docs/sizing.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := sizingTable{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := sizingRowLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n := atoi(m[1])
		if m[2] == "GiB" {
			n *= 1024
		}
		r := sizingRow{memoryMiB: n, cpus: atoi(m[3]), workers: atoi(m[4]), heapMiB: atoi(m[5]), budgetMiB: atoi(m[6]),
			machine: m[1] + " " + m[2] + ", " + m[3] + " CPU", found: true}
		table[[2]int{r.memoryMiB, r.cpus}] = r
	}
	if len(table) == 0 {
		t.Fatal("docs/sizing.md has no sizing table rows like | 512 MiB, 2 CPU | 2 | 147 MiB | 227 MiB |")
	}
	return table
}

// row returns the README row of a machine; one with found false when there
// is none.
func (st sizingTable) row(memoryMiB, cpus int) sizingRow {
	return st[[2]int{memoryMiB, cpus}]
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// containerPlan is what percore logged at start: its plan line and the
// memory guard's budget.
type containerPlan struct {
	line                   string
	cpus, workers, heapMiB int
	memoryMiB              int
	budgetMiB              int // 0 when no guard runs (no memory limit)
	guard                  string
}

var (
	planCPUs    = regexp.MustCompile(`cpus=(\d+)`)
	planMemory  = regexp.MustCompile(`memory=([0-9.]+)(MiB|GiB|TiB)`)
	planWorkers = regexp.MustCompile(`workers=(\d+)`)
	planHeap    = regexp.MustCompile(`heap=(\d+)MiB`)
	guardBudget = regexp.MustCompile(`budget_mib=(\d+)`)
)

// plan waits for percore's plan line and for its workers to be ready, and
// reads the plan.
func (c *container) plan() containerPlan {
	c.t.Helper()
	line := c.waitFor("plan: cpus=", 1, 30*time.Second)[0]
	var p containerPlan
	p.line = line[strings.Index(line, "plan: "):]
	find := func(re *regexp.Regexp) []string {
		m := re.FindStringSubmatch(p.line)
		if m == nil {
			c.t.Fatalf("the plan line lacks %s: %s", re, p.line)
		}
		return m
	}
	p.cpus, p.workers, p.heapMiB = atoi(find(planCPUs)[1]), atoi(find(planWorkers)[1]), atoi(find(planHeap)[1])
	m := find(planMemory)
	mem, _ := strconv.ParseFloat(m[1], 64)
	p.memoryMiB = int(math.Round(mem * map[string]float64{"MiB": 1, "GiB": 1024, "TiB": 1024 * 1024}[m[2]]))
	// The supervisor logs its memory guard before it starts the workers.
	c.waitFor("worker ready", p.workers, 30*time.Second)
	if g := c.lines("memory guard:"); len(g) > 0 {
		p.guard = g[0]
		if b := guardBudget.FindStringSubmatch(g[0]); b != nil {
			p.budgetMiB = atoi(b[1])
		}
	}
	c.t.Logf("%s", p.line)
	return p
}

// check compares the plan with a README row.
func (p containerPlan) check(t *testing.T, row sizingRow) {
	t.Helper()
	if !row.found {
		t.Fatalf("README's sizing table has no row for this container's limits")
	}
	got := [5]int{p.memoryMiB, p.cpus, p.workers, p.heapMiB, p.budgetMiB}
	want := [5]int{row.memoryMiB, row.cpus, row.workers, row.heapMiB, row.budgetMiB}
	if got != want {
		t.Errorf("plan in the container: memory %d MiB, %d CPUs, %d workers, heap %d MiB, budget %d MiB;\nREADME's row %q says %v\n%s\n%s",
			got[0], got[1], got[2], got[3], got[4], row.machine, want, p.line, p.guard)
	}
}

// limitCase is a container started only to read its plan.
type limitCase struct {
	name  string
	opts  []string
	cpus  int // the CPUs the machine needs for it
	check func(t *testing.T, p containerPlan)
}

// limitCases are the limits whose plans are checked beside the two
// containers the other checks use.
func limitCases(table sizingTable) []limitCase {
	// A fractional quota rounds up, never above the CPUs percore may run on
	// (README, How sizing works).
	fractional := min(2, runtime.NumCPU())
	wantCPUs := func(cpus int) func(t *testing.T, p containerPlan) {
		return func(t *testing.T, p containerPlan) {
			if p.cpus != cpus || p.workers != cpus {
				t.Errorf("plan: %d CPUs and %d workers, want %d and %d: %s", p.cpus, p.workers, cpus, cpus, p.line)
			}
		}
	}
	return []limitCase{
		{name: "cpus-1.5", opts: []string{"--cpus", "1.5"}, cpus: 2, check: wantCPUs(fractional)},
		{name: "cpuset-0", opts: []string{"--cpuset-cpus", "0"}, check: wantCPUs(1)},
		{name: "1g-2cpu", opts: []string{"--memory", "1g", "--cpus", "2"}, cpus: 2,
			check: func(t *testing.T, p containerPlan) { p.check(t, table.row(1024, 2)) }},
	}
}

// runServing runs a container with opts in a parallel subtest and checks
// that it serves GET / through a published port; it logs what percore
// warned about.
func runServing(t *testing.T, pm *podman, image, name string, opts ...string) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		c := pm.start(t, image, append(opts, "--network", "slirp4netns", "--publish", "127.0.0.1::8080")...)
		c.plan()
		var reply struct {
			UID int `json:"uid"`
		}
		getJSON(t, "http://"+c.addr(8080)+"/", &reply)
		t.Logf("served GET / from uid %d", reply.UID)
		for _, level := range []string{"[WARN]", "[ERROR]"} {
			for _, line := range c.lines(level) {
				t.Logf("percore logged: %s", line)
			}
		}
		for _, line := range c.lines("control socket") {
			t.Logf("percore logged: %s", line)
		}
	})
}

// getJSON GETs url, wants 200, and decodes the answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// checkServe asks for /healthz and /readyz on the admin port and / on the
// public one.
func checkServe(t *testing.T, base, admin string) {
	get(t, admin+"/healthz")
	get(t, admin+"/readyz")
	if body := get(t, base+"/"); !strings.Contains(body, `"hello":"container"`) {
		t.Errorf("GET / answered %s", body)
	}
}

// checkReload sends SIGHUP with podman kill while a client sends a request
// every 20 ms, and wants every request answered 200 through the rolling
// reload.
func checkReload(t *testing.T, c *container, base string) {
	l := startLoad(base + "/")
	start := time.Now()
	c.signal("HUP")
	done := c.waitFor("reload done", 1, 60*time.Second)[0]
	took := time.Since(start)
	sent, failed := l.stop()
	if f := c.lines("RELOAD FAILED"); len(f) > 0 {
		t.Errorf("the reload failed: %s", f[0])
	}
	t.Logf("podman kill -s HUP under a request every 20 ms: %s after %s; %d requests sent, %d failed",
		done[strings.Index(done, "reload done"):], took.Round(10*time.Millisecond), sent, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed during the reload, e.g. %s", len(failed), sent, failed[0])
	}
}

// load sends GET requests one after another, 20 ms apart, until stopped.
type load struct {
	url  string
	quit chan struct{}
	done chan struct{}
	sent int
	fail []string // protected by done: read after it is closed
}

func startLoad(url string) *load {
	l := &load{url: url, quit: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// run is the load's goroutine; stop ends it.
func (l *load) run() {
	defer close(l.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-tick.C:
		}
		l.sent++
		resp, err := client.Get(l.url)
		if err != nil {
			l.fail = append(l.fail, err.Error())
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			l.fail = append(l.fail, resp.Status)
		}
	}
}

// stop ends the load and returns how many requests were sent and why
// those that failed did.
func (l *load) stop() (int, []string) {
	close(l.quit)
	<-l.done
	return l.sent, l.fail
}

// checkStop stops the container with podman stop while a request that
// takes 3 s is in flight: it must be answered 200, and percore exit 0.
func checkStop(t *testing.T, c *container, base string) {
	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Get(base + "/slow?ms=3000")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode}
	}()
	c.waitFor("slow request", 1, 10*time.Second)
	took, code := c.stop()
	a := <-answered
	t.Logf("podman stop with a 3 s request in flight: %s, exit code %d; the request: %d %v", took.Round(10*time.Millisecond), code, a.status, a.err)
	if a.err != nil || a.status != http.StatusOK {
		t.Errorf("the request in flight at podman stop got %d %v, want 200", a.status, a.err)
	}
	if code != 0 {
		t.Errorf("the container exited %d after podman stop, want 0; output:\n%s", code, c.output.String())
	}
	if took >= 10*time.Second {
		t.Errorf("podman stop took %s: percore did not stop before podman's 10 s SIGKILL", took)
	}
}

// checkReaping checks that percore is PID 1 and reaps orphans: the app
// starts 200 shells that each leave a sleep behind; the sleeps, reparented
// to percore, must leave no zombie once they have exited.
func checkReaping(t *testing.T, c *container, base string) {
	pid := c.pid()
	if ns := namespacePid(t, pid); ns != 1 {
		t.Errorf("percore is pid %d in the container, want 1", ns)
	}
	var reply struct {
		Failed int `json:"failed"`
	}
	getJSON(t, base+"/orphans?n=200", &reply)
	if reply.Failed > 0 {
		t.Fatalf("the app could not start %d of its 200 shells", reply.Failed)
	}
	deadline := time.Now().Add(testutil.Scaled(15 * time.Second))
	most := 0
	for {
		running, zombies := childrenOf(t, pid, "sleep")
		most = max(most, zombies)
		if running == 0 && zombies == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d sleeps still running and %d zombie children of percore (pid 1) %s after the shells exited",
				running, zombies, testutil.Scaled(15*time.Second))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("PID 1 reaping: 200 orphaned sleeps, 0 zombies left (at most %d seen between exit and reaping)", most)
}

// namespacePid returns the pid that host pid has in its own pid namespace.
func namespacePid(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			return atoi(f[len(f)-1])
		}
	}
	t.Fatalf("/proc/%d/status has no NSpid line", pid)
	return 0
}

// childrenOf counts the children of host pid parent named comm: those
// running and the zombies. Zombies have left their cgroup, so the whole
// of /proc is read.
func childrenOf(t *testing.T, parent int, comm string) (running, zombies int) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 || s[open+1:end] != comm || atoi(f[1]) != parent {
			continue
		}
		if f[0] == "Z" {
			zombies++
		} else {
			running++
		}
	}
	return running, zombies
}

// checkOffHeapGrowth makes the worker keep 4 MiB more in Buffers every
// 50 ms: percore's memory guard must replace it before the container's
// memory cgroup reaches its limit, with no kernel OOM kill.
func checkOffHeapGrowth(t *testing.T, c *container, base string) {
	cg, err := testutil.MemoryCgroupOf(c.pid())
	if err != nil {
		t.Fatal(err)
	}
	before, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	ready := len(c.lines("worker ready"))
	var leaking struct {
		PID int `json:"pid"`
	}
	start := time.Now()
	getJSON(t, base+"/leak", &leaking)
	// The guard recycles the worker over its budget, or kills it over the
	// hard limit when it grew past both between two samples.
	acted := c.waitForFirst(60*time.Second, "recycling worker", "killing worker", "OOM killer")
	took := time.Since(start)
	c.waitFor("worker ready", ready+1, 30*time.Second)
	after, err := cg.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := cg.Peak()
	var now struct {
		PID int `json:"pid"`
	}
	getJSON(t, base+"/", &now)
	t.Logf("memory outside the heap in 256m: %s after the growth began, %s; kernel OOM kills %d; cgroup peak %d MiB",
		took.Round(10*time.Millisecond), acted[strings.Index(acted, "percore"):], after-before, peak>>20)
	if after != before {
		t.Errorf("the kernel OOM killer struck %d times in the container's cgroup %s", after-before, cg.Dir)
	}
	if k := c.lines("OOM killer"); len(k) > 0 {
		t.Errorf("percore saw an OOM kill: %s", k[0])
	}
	if now.PID == leaking.PID {
		t.Errorf("worker pid %d still serves after its recycling", now.PID)
	}
}
