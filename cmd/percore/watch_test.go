package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// watchApp copies the --watch test app into a new directory, with
// version.js exporting version, and returns the directory.
func watchApp(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{filepath.Join("testdata", "watch-app", "server.js"), proxyAppJS()} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, filepath.Base(f)), string(b))
	}
	writeFile(t, filepath.Join(dir, "package.json"), `{"name": "watch-app", "private": true}`)
	setVersion(t, dir, version)
	return dir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setVersion saves version.js the way an editor does: a whole new file.
func setVersion(t *testing.T, dir, version string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "version.js"), fmt.Sprintf("module.exports = %q;\n", version))
}

// versionLoad is a client loop that notes each answer's app version.
type versionLoad struct {
	mu       sync.Mutex
	ok       int
	failed   []string
	versions []stamped
	stop     chan struct{}
	wg       sync.WaitGroup
}

type stamped struct {
	at      time.Time
	version string
	pid     int // the worker that answered
}

// loadVersions keeps conns clients sending GETs to / through percore until
// end is called (at most 60 s).
func loadVersions(in *instance, conns int) *versionLoad {
	l := &versionLoad{stop: make(chan struct{})}
	for i := 0; i < conns; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(c, "http://"+in.addr+"/")
			}
		}()
	}
	return l
}

func (l *versionLoad) one(c *http.Client, url string) {
	resp, err := c.Get(url)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed = append(l.failed, err.Error())
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		l.failed = append(l.failed, resp.Status)
		return
	}
	l.ok++
	var h hello
	json.Unmarshal(body, &h) // "/" answers {pid, worker}
	l.versions = append(l.versions, stamped{time.Now(), resp.Header.Get("x-app-version"), h.PID})
}

// end stops the clients and checks that every request succeeded.
func (l *versionLoad) end(t *testing.T) []stamped {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d requests succeeded, %d failed", l.ok, len(l.failed))
	if len(l.failed) > 0 || l.ok == 0 {
		t.Errorf("%d of %d requests failed: %.5q", len(l.failed), l.ok+len(l.failed), l.failed)
	}
	return l.versions
}

// countLogs counts the log lines so far whose message starts with msg.
func (in *instance) countLogs(msg string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, m := range in.seen {
		if s, _ := m["@message"].(string); strings.HasPrefix(s, msg) {
			n++
		}
	}
	return n
}

// TestWatchSaveUnderLoad saves a change while clients send requests and one
// WebSocket is open: no request fails, the answers come from the new code
// once the reload is done, and the WebSocket stays open on its old worker
// until the drain deadline.
func TestWatchSaveUnderLoad(t *testing.T) {
	needNode(t)
	const budget = 3 * time.Second
	dir := watchApp(t, "v1")
	in := start(t, "--workers", "2", "--watch", "--shutdown-timeout", budget.String(), "--",
		"node", filepath.Join(dir, "server.js"))
	if m := in.findLog("watching for changes", 5*time.Second); m["dirs"] != 1.0 {
		t.Errorf("watching %v directories, want 1 (the app's): %v", m["dirs"], m)
	}
	in.waitLog("worker ready", 20*time.Second) // the second worker
	ws, resp := dialWS(t, in.addr, "/ws?linger=1", "")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	ws.roundTrip(t)

	load := loadVersions(in, 2)
	time.Sleep(300 * time.Millisecond)
	saved := time.Now()
	setVersion(t, dir, "v2")
	// The old worker with the open WebSocket drains, and still echoes.
	in.waitLog("worker draining", 20*time.Second)
	if err := ws.send(1, []byte("mid-reload")); err != nil {
		t.Fatal(err)
	}
	if op, got, err := ws.recv(time.Second); err != nil || op != 1 || string(got) != "mid-reload" {
		t.Fatalf("echo during the reload: %d %q %v", op, got, err)
	}
	_, _, err := ws.recv(budget + 10*time.Second)
	closedAfter := time.Since(saved)
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("tunnel after the drain deadline: %v, want it closed", err)
	}
	if closedAfter < budget {
		t.Errorf("tunnel closed %s after the save, before its worker's %s drain deadline", closedAfter, budget)
	}
	m := in.waitLog("reloaded", 20*time.Second)
	reloaded := time.Now()
	if m["changed"] != "version.js" || m["replaced"] != 2.0 {
		t.Errorf("reload line %v, want version.js changed and 2 workers replaced", m)
	}
	time.Sleep(300 * time.Millisecond)
	versions := load.end(t)
	var firstNew time.Time
	for _, v := range versions {
		if v.version == "v2" && firstNew.IsZero() {
			firstNew = v.at
		}
		if v.at.After(reloaded) && v.version != "v2" {
			t.Fatalf("answer from %s after the reload was done", v.version)
		}
	}
	if firstNew.IsZero() || firstNew.Sub(saved) > 15*time.Second {
		t.Errorf("first answer from the new code %s after the save", firstNew.Sub(saved))
	}
	t.Logf("first answer from the new code %s after the save; reload done after %s",
		firstNew.Sub(saved).Round(time.Millisecond), reloaded.Sub(saved).Round(time.Millisecond))
}

// TestWatchBrokenSaveKeepsServing saves a syntax error: no request fails, the
// old version answers, percore shows the error; fixing the file reloads.
func TestWatchBrokenSaveKeepsServing(t *testing.T) {
	needNode(t)
	dir := watchApp(t, "v1")
	in := start(t, "--workers", "2", "--watch", "--", "node", filepath.Join(dir, "server.js"))
	in.waitLog("worker ready", 20*time.Second)
	load := loadVersions(in, 2)
	writeFile(t, filepath.Join(dir, "version.js"), "module.exports = \"v2\" +;\n")
	m := in.waitLog("reload failed", 30*time.Second)
	if m["replaced"] != 0.0 {
		t.Errorf("failed reload line %v, want 0 workers replaced", m)
	}
	time.Sleep(300 * time.Millisecond)
	for _, v := range load.end(t) {
		if v.version != "v1" {
			t.Fatalf("answer from %q, want the old version v1", v.version)
		}
	}
	failed := in.findLog("RELOAD FAILED", time.Second)["@message"].(string)
	if !strings.Contains(failed, "new worker | SyntaxError: Unexpected token") {
		t.Errorf("the failed reload does not show the new worker's error:\n%s", failed)
	}
	in.findLog("the previous version is still serving", time.Second)

	load = loadVersions(in, 1)
	setVersion(t, dir, "v2")
	in.waitLog("reloaded", 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	if vs := load.end(t); vs[len(vs)-1].version != "v2" {
		t.Errorf("after the fix the app answers %q, want v2", vs[len(vs)-1].version)
	}
}

// TestWatchFollowsTheTree checks what reloads and what does not: a burst of
// saves is one reload, changes under node_modules and .git none, a
// directory made after the start is watched, and deleting it is harmless.
func TestWatchFollowsTheTree(t *testing.T) {
	needNode(t)
	dir := watchApp(t, "v1")
	writeFile(t, filepath.Join(dir, "node_modules", "dep", "index.js"), "")
	writeFile(t, filepath.Join(dir, ".git", "HEAD"), "")
	in := start(t, "--workers", "1", "--watch", "--watch-debounce", "200ms", "--",
		"node", filepath.Join(dir, "server.js"))
	reloads := func() int { return in.countLogs("reload started") }

	writeFile(t, filepath.Join(dir, "node_modules", "dep", "index.js"), "changed")
	writeFile(t, filepath.Join(dir, "node_modules", "new-dep", "index.js"), "new")
	writeFile(t, filepath.Join(dir, ".git", "HEAD"), "changed")
	time.Sleep(time.Second)
	if n := reloads(); n != 0 {
		t.Fatalf("%d reloads after changes under node_modules and .git, want 0", n)
	}

	for i := 0; i < 50; i++ { // 50 saves within about 100 ms
		setVersion(t, dir, fmt.Sprintf("v%d", i+2))
		time.Sleep(2 * time.Millisecond)
	}
	in.waitLog("reloaded", 30*time.Second)
	time.Sleep(time.Second)
	if n := reloads(); n != 1 {
		t.Fatalf("%d reloads after a burst of 50 saves, want 1", n)
	}

	sub := filepath.Join(dir, "routes", "api")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	in.waitLog("reloaded", 30*time.Second)
	writeFile(t, filepath.Join(sub, "users.js"), "module.exports = {};\n")
	if m := in.waitLog("reloaded", 30*time.Second); m["changed"] != filepath.Join("routes", "api", "users.js") {
		t.Errorf("reload for %v, want routes/api/users.js", m["changed"])
	}
	if err := os.RemoveAll(filepath.Join(dir, "routes")); err != nil {
		t.Fatal(err)
	}
	in.waitLog("reloaded", 30*time.Second)
	setVersion(t, dir, "after")
	in.waitLog("reloaded", 30*time.Second)
	resp, err := client.Get("http://" + in.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("x-app-version"); v != "after" {
		t.Errorf("app answers %q, want after", v)
	}
}
