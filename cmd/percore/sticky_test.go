package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// socketIOModules returns the node_modules folder that
// scripts/install-tools.d/socketio.sh fills, and skips the test when the
// packages are not there.
func socketIOModules(t *testing.T) string {
	t.Helper()
	return testModules(t, "socketio", "socket.io", "socket.io-client", "express", "express-session")
}

// testModules returns .tools/npm/FOLDER/node_modules, which a script in
// scripts/install-tools.d fills, and skips the test when one of pkgs is not
// there.
func testModules(t *testing.T, folder string, pkgs ...string) string {
	t.Helper()
	needNode(t)
	dir, err := filepath.Abs(filepath.Join("..", "..", ".tools", "npm", folder, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, pkg, "package.json")); err != nil {
			t.Skipf("%s is not installed in .tools/npm/%s: run ./scripts/install-tools", pkg, folder)
		}
	}
	return dir
}

// startSticky runs percore with flags and the test app (socket.io; with
// app "session" the express-session app) and waits until workers are
// ready.
func startSticky(t *testing.T, modules string, workers int, app string, flags ...string) *instance {
	t.Helper()
	args := append([]string{"--workers", fmt.Sprint(workers)}, flags...)
	args = append(args, "--", "node", filepath.Join("testdata", "socketio-app.js"), app)
	in := launchBin(t, percoreBin, []string{"NODE_PATH=" + modules}, nil, args...)
	deadline := time.Now().Add(30 * time.Second)
	for getStatus(t, in).ReadyWorkers != workers {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers not ready in time", workers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return in
}

// ioClient is one socket.io client's report from socketio-clients.js.
type ioClient struct {
	Mode          string         `json:"mode"`
	OK            int            `json:"ok"`
	Failures      int            `json:"failures"`
	Workers       map[string]int `json:"workers"`
	Disconnects   int            `json:"disconnects"`
	ConnectErrors int            `json:"connectErrors"`
	Upgraded      string         `json:"upgraded"`
	SinceOK       int64          `json:"sinceOk"` // ms from the last good round trip to the end
}

// runIOClients runs socketio-clients.js against in: n clients of each
// mode, rounds round trips each, or for seconds.
func runIOClients(t *testing.T, modules string, in *instance, n, rounds, seconds int) []ioClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "socketio-clients.js"),
		"http://"+in.addr, fmt.Sprint(n), fmt.Sprint(rounds), fmt.Sprint(seconds))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("socket.io clients: %v", err)
	}
	var clients []ioClient
	if err := json.Unmarshal(out, &clients); err != nil {
		t.Fatalf("socket.io clients' report %q: %v", out, err)
	}
	return clients
}

// TestSocketIOWorksWithNoFlag runs socket.io with its default options on 2
// workers: 40 clients with socket.io-client's defaults (long-polling, then
// the WebSocket upgrade), 40 polling-only and 40 WebSocket-only each do 10
// acknowledged round trips. Without session affinity the polling clients'
// sessions break with 400 "Session ID unknown".
func TestSocketIOWorksWithNoFlag(t *testing.T) {
	modules := socketIOModules(t)
	in := startSticky(t, modules, 2, "socket.io")
	clients := runIOClients(t, modules, in, 40, 10, 0)
	perWorker := map[string]int{}
	failures, upgraded := 0, 0
	for _, c := range clients {
		failures += c.Failures
		if c.Failures != 0 || c.OK != 10 || c.Disconnects != 0 || c.ConnectErrors != 0 || len(c.Workers) != 1 {
			t.Errorf("%s client: %+v", c.Mode, c)
		}
		for w := range c.Workers {
			perWorker[w]++
		}
		if c.Mode == "default" && c.Upgraded == "websocket" {
			upgraded++
		}
	}
	t.Logf("%d clients, %d failed round trips, clients per worker %v, %d default clients upgraded", len(clients), failures, perWorker, upgraded)
	if len(clients) != 120 || len(perWorker) != 2 {
		t.Errorf("%d clients on workers %v, want 120 on both workers", len(clients), perWorker)
	}
	st := getStatus(t, in).Sticky
	t.Logf("/status sticky: %+v", st)
	if st.Followed == 0 || st.Moved != 0 {
		t.Errorf("/status sticky %+v: want requests followed, none moved", st)
	}
}

// TestSocketIOThroughReloadAndScale keeps socket.io clients busy through a
// rolling reload and a scale from 2 to 3 workers: every client keeps its
// session or reconnects by itself, and none is stuck at the end.
func TestSocketIOThroughReloadAndScale(t *testing.T) {
	modules := socketIOModules(t)
	in := startSticky(t, modules, 2, "socket.io", "--shutdown-timeout", "2s")
	done := make(chan []ioClient, 1)
	go func() { done <- runIOClients(t, modules, in, 10, 0, 14) }()
	time.Sleep(1500 * time.Millisecond)
	in.signal(syscall.SIGHUP)
	in.waitLog("reload done", 30*time.Second)
	in.signal(syscall.SIGTTIN)
	deadline := time.Now().Add(20 * time.Second)
	for getStatus(t, in).ReadyWorkers != 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var clients []ioClient
	select {
	case clients = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("socket.io clients did not finish")
	}
	reconnected, failures := 0, 0
	for _, c := range clients {
		failures += c.Failures
		if c.Disconnects > 0 {
			reconnected++
		}
		// A client round-trips every 100ms; one whose last good round
		// trip is older than a few seconds is stuck.
		if c.OK == 0 || c.SinceOK < 0 || c.SinceOK > 3000 {
			t.Errorf("%s client stuck: %+v", c.Mode, c)
		}
	}
	st := getStatus(t, in)
	t.Logf("%d clients, %d reconnected by themselves, %d round trips lost in flight; /status sticky %+v, %d workers ready",
		len(clients), reconnected, failures, st.Sticky, st.ReadyWorkers)
	if len(clients) != 30 || st.ReadyWorkers != 3 {
		t.Errorf("%d clients, %d workers ready; want 30 and 3", len(clients), st.ReadyWorkers)
	}
}

// TestAffinityCookieKeepsLogins logs 20 users in to an express app whose
// sessions live in express-session's memory store, on 2 workers, then has
// each ask "who am I" 10 times on fresh connections with a client that
// keeps cookies as a browser does: with --affinity cookie no login is lost;
// without it, logins are lost.
func TestAffinityCookieKeepsLogins(t *testing.T) {
	modules := socketIOModules(t)
	lost := func(flags ...string) int {
		in := startSticky(t, modules, 2, "session", flags...)
		lostN := 0
		for u := range 20 {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Post(fmt.Sprintf("http://%s/login?user=u%d", in.addr, u), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("login: status %d", resp.StatusCode)
			}
			for range 10 {
				resp, err := c.Get("http://" + in.addr + "/me")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
				case 401:
					lostN++
				default:
					t.Fatalf("/me: status %d", resp.StatusCode)
				}
			}
		}
		if st := getStatus(t, in).Sticky; len(flags) > 0 {
			t.Logf("%v: /status sticky %+v", flags, st)
		}
		in.signal(syscall.SIGTERM)
		in.wait(20 * time.Second)
		return lostN
	}
	with := lost("--affinity", "cookie")
	without := lost()
	t.Logf("lost logins of 200 requests: %d with --affinity cookie, %d without", with, without)
	if with != 0 {
		t.Errorf("--affinity cookie lost %d logins", with)
	}
	if without == 0 {
		t.Error("without --affinity no login was lost: the test cannot tell the flag works")
	}
}

// TestAffinityCookieLeavesTheAppsCookieHeader sends Cookie lines with a
// quoted value, a JSON value, "=bare", a pair without "=" and percore's
// own pair to a node worker, which echoes req.headers.cookie: with
// --affinity cookie it gets them byte for byte less percore_worker (Node
// joins several lines with "; "); with affinity off, untouched. percore
// used to let fasthttp parse and write the header again: quotes stripped,
// the JSON pair dropped, "=bare" turned into "bare", percore_worker kept.
func TestAffinityCookieLeavesTheAppsCookieHeader(t *testing.T) {
	needNode(t)
	const app = `sid="abc def"; prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`
	for _, c := range []struct {
		name  string
		flags []string
		lines []string
		want  string
	}{
		{"pair in the middle", []string{"--affinity", "cookie"},
			[]string{`sid="abc def"; percore_worker=0; prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`}, app},
		{"pair first and last, odd spaces", []string{"--affinity", "cookie"},
			[]string{"percore_worker=0 ;  " + app + ";percore_worker=0"}, app},
		{"pair on a line of its own", []string{"--affinity", "cookie"},
			[]string{`sid="abc def"`, "percore_worker=0", `prefs={"theme":"dark","n":[1,2]}; =bare; flag; a==b`}, app},
		{"affinity off", nil, []string{"percore_worker=0; " + app}, "percore_worker=0; " + app},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--workers", "1", "--health-interval", "off"}, c.flags...)
			in := start(t, append(args, "--", "node", proxyAppJS())...)
			raw := "GET /headers HTTP/1.1\r\nHost: app.test\r\n"
			for _, l := range c.lines {
				raw += "Cookie: " + l + "\r\n"
			}
			seen := sendForHeaders(t, in.addr, raw+"Connection: close\r\n\r\n")
			if got := seen.Headers["cookie"]; got != c.want {
				t.Errorf("the app's req.headers.cookie is\n%s\nwant\n%s", got, c.want)
			}
			in.signal(syscall.SIGTERM)
			in.wait(20 * time.Second)
		})
	}
}
