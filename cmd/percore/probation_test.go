package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of a reload's probation: new code that listens, answers, and
// dies 1.5 s later must leave the previous version serving.

// brokenAfterListen is a version.js for the watch test app whose server
// dies after 1.5 s of listening, as an app does whose database connection
// fails after its server started. Its last words name no secret: they must
// reach percore's log, and nothing else.
func brokenAfterListen(version string) string {
	return fmt.Sprintf(`const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => setTimeout(() => {
    throw new Error("%[1]s lost its database 1.5 s after it listened");
  }, 1500));
  return listen.apply(this, args);
};
module.exports = %[1]q;
`, version)
}

// paceVersions sends one GET to / through percore every interval, one at a
// time, until end is called (at most 90 s), noting each answer's version.
func paceVersions(in *instance, interval time.Duration) *versionLoad {
	l := &versionLoad{stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
			l.one(c, "http://"+in.addr+"/")
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

// longestGap is the longest time between two answers from version v, or
// from any version when v is "", among answers between from and to.
func longestGap(answers []stamped, v string, from, to time.Time) time.Duration {
	var longest time.Duration
	last := from
	for _, a := range answers {
		if a.at.Before(from) || a.at.After(to) || (v != "" && a.version != v) {
			continue
		}
		longest = max(longest, a.at.Sub(last))
		last = a.at
	}
	return max(longest, to.Sub(last))
}

// checkProbationFailed checks what percore says of a reload whose new
// worker died on probation: the log shows its output and says the previous
// version still serves; /status says why in percore's words and nothing
// the app printed.
func checkProbationFailed(t *testing.T, in *instance) {
	t.Helper()
	failed, _ := in.findLog("RELOAD FAILED", 10*time.Second)["@message"].(string)
	if !strings.Contains(failed, "failed its probation") || !strings.Contains(failed, "died on probation (exit code 1)") ||
		!strings.Contains(failed, "new worker | Error: v2 lost its database") {
		t.Errorf("the failed reload's log line does not say the new worker died on probation, with its output:\n%s", failed)
	}
	in.findLog("the previous version is still serving", 10*time.Second)
	st := getStatus(t, in)
	t.Logf("/status reload.error: %s", st.Reload.Error)
	if st.Reload.State != "failed" || !strings.Contains(st.Reload.Error, "died on probation (exit code 1)") ||
		!strings.Contains(st.Reload.Error, "percore's log") || strings.Contains(st.Reload.Error, "database") {
		t.Errorf("/status reload = %+v; want failed, died on probation, in percore's words only", st.Reload)
	}
}

// checkOldVersionServed checks the answers of a failed reload: none failed,
// the previous version answered all along, and only it answered once the
// reload was reported failed.
func checkOldVersionServed(t *testing.T, answers []stamped, saved, failed, end time.Time, old map[int]bool) {
	t.Helper()
	for _, a := range answers {
		if a.at.After(failed) && (a.version != "v1" || !old[a.pid]) {
			t.Fatalf("after the failed reload, %s answered from pid %d; want v1 from the old workers %v",
				a.version, a.pid, old)
		}
	}
	gapV1 := longestGap(answers, "v1", saved, end)
	t.Logf("%d answers; from the save until the end: longest gap %s between answers, %s between answers of v1; "+
		"the reload failed %s after the save", len(answers), longestGap(answers, "", saved, end).Round(time.Millisecond),
		gapV1.Round(time.Millisecond), failed.Sub(saved).Round(time.Millisecond))
	if gapV1 > 3*time.Second {
		t.Errorf("v1 did not answer for %s after the broken save", gapV1)
	}
}

// oldPids returns the pids of the ready workers /status shows, once there
// are n.
func oldPids(t *testing.T, in *instance, n int) map[int]bool {
	t.Helper()
	waitServing(t, in, n, "start")
	pids := map[int]bool{}
	for _, w := range getStatus(t, in).Workers {
		pids[w.PID] = true
	}
	return pids
}

// TestWatchSaveDyingOnProbationKeepsServing saves a version that answers,
// then dies 1.5 s after it listens, while a client sends a request every
// 20 ms: no request fails, the previous version answers throughout, the
// reload is reported failed (log, /status), and the next good save takes
// over. Before the probation the replacement took over as soon as it
// listened: the reload reported success, the old workers were stopped, and
// the broken version crashed in a loop, with hundreds of 502s.
func TestWatchSaveDyingOnProbationKeepsServing(t *testing.T) {
	needNode(t)
	dir := watchApp(t, "v1")
	in := start(t, "--workers", "2", "--watch", "--", "node", filepath.Join(dir, "server.js"))
	old := oldPids(t, in, 2)
	load := paceVersions(in, 20*time.Millisecond)

	saved := time.Now()
	writeFile(t, filepath.Join(dir, "version.js"), brokenAfterListen("v2"))
	if m := in.waitLog("reload failed", 60*time.Second); m["replaced"] != 0.0 {
		t.Errorf("failed reload line %v, want 0 workers replaced", m)
	}
	failed := time.Now()
	checkProbationFailed(t, in)
	time.Sleep(time.Second) // a second more of v1 answers, under load
	fixed := time.Now()
	load.mu.Lock()
	answers := append([]stamped(nil), load.versions...)
	load.mu.Unlock()
	checkOldVersionServed(t, answers, saved, failed, fixed, old)

	setVersion(t, dir, "v3")
	in.waitLog("reloaded", 60*time.Second)
	reloaded := time.Now()
	time.Sleep(300 * time.Millisecond)
	for _, a := range load.end(t) {
		if a.at.After(reloaded) && a.version != "v3" {
			t.Fatalf("answer from %s after the good save's reload was done", a.version)
		}
	}
}

// TestReloadDyingOnProbationStopsTheReload sends SIGHUP with a version that
// dies 1.5 s after it listens, to 2 workers under a client sending a
// request every 20 ms: no request fails, the reload stops after the first
// replacement failed its probation (the second worker is not replaced),
// both old workers serve on, and a good version then reloads.
func TestReloadDyingOnProbationStopsTheReload(t *testing.T) {
	needNode(t)
	dir := watchApp(t, "v1")
	in := start(t, "--workers", "2", "--", "node", filepath.Join(dir, "server.js"))
	old := oldPids(t, in, 2)
	load := paceVersions(in, 20*time.Millisecond)

	writeFile(t, filepath.Join(dir, "version.js"), brokenAfterListen("v2"))
	saved := time.Now()
	in.signal(syscall.SIGHUP)
	in.waitLog("RELOAD FAILED", 60*time.Second)
	failed := time.Now()
	checkProbationFailed(t, in)
	time.Sleep(time.Second) // a second more under load, in which no further replacement may start
	end := time.Now()
	if n := in.countLogs("replacing worker"); n != 1 {
		t.Errorf("%d replacements started, want 1: the reload stops at the first failure", n)
	}
	st := getStatus(t, in)
	now := map[int]bool{}
	for _, w := range st.Workers {
		if w.Ready {
			now[w.PID] = true
		}
	}
	if !sameKeys(now, old) {
		t.Errorf("ready workers %v after the failed reload, want the old %v", now, old)
	}
	load.mu.Lock()
	answers := append([]stamped(nil), load.versions...)
	load.mu.Unlock()
	checkOldVersionServed(t, answers, saved, failed, end, old)
	answered := map[int]bool{}
	for _, a := range answers {
		if a.at.After(failed) {
			answered[a.pid] = true
		}
	}
	if !sameKeys(answered, old) {
		t.Errorf("after the failed reload pids %v answered, want both old workers %v", answered, old)
	}

	setVersion(t, dir, "v3")
	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 60*time.Second)
	reloaded := time.Now()
	time.Sleep(300 * time.Millisecond)
	for _, a := range load.end(t) {
		if a.at.After(reloaded) && a.version != "v3" {
			t.Fatalf("answer from %s after the good reload was done", a.version)
		}
	}
}
