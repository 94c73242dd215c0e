//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// naiveLoad is conns clients that each send GETs one after the other on a
// kept-alive connection and never send a request again: a request lost
// when the server closes or resets the connection counts as failed. A
// client opens a new connection when the server ends the one it had
// (Connection: close) or after a failure. Go's net/http client would
// hide such losses: it sends a GET again when a reused connection fails.
type naiveLoad struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       []string // the first few failures
}

func startNaiveLoad(addr string, conns int) *naiveLoad {
	l := &naiveLoad{stop: make(chan struct{})}
	for range conns {
		l.wg.Add(1)
		go l.client(addr)
	}
	return l
}

// client runs one client until stop closes, for at most 90s or 50000
// requests.
func (l *naiveLoad) client(addr string) {
	defer l.wg.Done()
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	for n := 0; n < 50000 && time.Now().Before(deadline); n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				l.fail(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReader(c)
		}
		keep, err := naiveGet(conn, br)
		if err != nil {
			l.fail(err)
		} else {
			l.ok.Add(1)
		}
		if err != nil || !keep {
			conn.Close()
			conn = nil
		}
	}
}

// naiveGet sends GET / on conn and reads its answer from br: whether the
// connection may carry another request, and nil for a 200.
func naiveGet(conn net.Conn, br *bufio.Reader) (bool, error) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return false, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != 200 {
		return !resp.Close, fmt.Errorf("status %d", resp.StatusCode)
	}
	return !resp.Close, nil
}

func (l *naiveLoad) fail(err error) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

func (l *naiveLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// stopperApp is direct-stopper.js stopping itself as stop says, with the
// package pkg (from scripts/install-tools.d/gracefulshutdown.sh) when not
// "". A missing package skips the test, or fails it in CI.
func stopperApp(stop, pkg string) func(*testing.T) frameworkApp {
	return func(t *testing.T) frameworkApp {
		needNode(t)
		env := []string{"STOP=" + stop}
		if pkg != "" {
			manifest := filepath.Join("..", "..", ".tools", "npm", "gracefulshutdown", "node_modules", pkg, "package.json")
			if _, err := os.Stat(manifest); err != nil && os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed in .tools/npm/gracefulshutdown: scripts/install-tools must install it for CI", pkg)
			}
			env = append(env, "NODE_PATH="+testModules(t, "gracefulshutdown", pkg))
		}
		return frameworkApp{argv: []string{"node", filepath.Join("testdata", "direct-stopper.js")}, env: env}
	}
}

// An app that stops itself on SIGTERM may destroy the keep-alive
// connections it holds as idle: a client's next request, already on its
// way, met a reset. In direct mode the app's handler runs only once the
// server has stopped accepting and its connections have ended (each later
// answer ends its own), so three reloads under load lose nothing. The
// handler still runs, once in every replaced worker, which exits with the
// app's own code. Before the handler waited, the app stopping as Nuxt's
// Nitro server does (http-graceful-shutdown) lost 30 requests of 48,652,
// the one that destroys its sockets 29 of 41,720 (reset, or closed before
// the answer). Next's standalone server, which only closes its server (the
// preload already kept that from closing a connection too early) and exits
// 143, lost none before either: it shows a framework's stop still works.
func TestDirectModeReloadWaitsForTheAppsStopHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("three reloads under load per app; skipped with -short")
	}
	for _, tc := range []struct {
		name    string
		app     func(*testing.T) frameworkApp
		reloads int    // Next takes seconds to start: one reload
		exit    string // the exit of a replaced worker
		handler bool   // the app's handler writes a line on stdout
	}{
		{"http-graceful-shutdown", stopperApp("graceful-shutdown", "http-graceful-shutdown"), 3, "exit code 0", true},
		{"destroys its sockets", stopperApp("destroy", ""), 3, "exit code 0", true},
		{"next standalone", nextStandaloneApp, 1, "exit code 143", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := tc.app(t)
			args := append([]string{"--mode", "direct", "--workers", "2", "--probation", "0", "--"}, app.argv...)
			in := launchBin(t, percoreBin, app.env, nil, args...)
			waitReady(t, "http://"+in.admin+"/status", 2)
			reloadsUnderNaiveLoad(t, in, tc.reloads)
			checkStopped(t, in, 2*tc.reloads, tc.exit)
			if tc.handler {
				checkStopHandlers(t, in, 2*tc.reloads)
			}
		})
	}
}

// reloadsUnderNaiveLoad reloads in n times, one after the other, under a
// naive keep-alive load of 8 clients, and fails if a request failed.
func reloadsUnderNaiveLoad(t *testing.T, in *instance, n int) {
	t.Helper()
	l := startNaiveLoad(in.addr, 8)
	for i := range n {
		time.Sleep(300 * time.Millisecond) // every client has a kept-alive connection
		in.signal(syscall.SIGHUP)
		in.waitLog("reload done", 60*time.Second)
		t.Logf("reload %d done: %d answered, %d failed so far", i+1, l.ok.Load(), l.failed.Load())
	}
	time.Sleep(300 * time.Millisecond)
	l.end()
	t.Logf("8 naive keep-alive clients through %d reload(s): %d of %d requests failed", n,
		l.failed.Load(), l.failed.Load()+l.ok.Load())
	if l.failed.Load() > 0 || l.ok.Load() == 0 {
		t.Errorf("%d of %d requests failed (first: %v), want 0", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.errs)
	}
}

// checkStopped waits until replaced workers have stopped and checks that
// each exited as exit says, not killed.
func checkStopped(t *testing.T, in *instance, replaced int, exit string) {
	t.Helper()
	deadline := time.Now().Add(testutil.Scaled(20 * time.Second))
	for {
		var ends []map[string]any
		in.mu.Lock()
		for _, m := range in.seen {
			if m["@message"] == "worker stopped" {
				ends = append(ends, m)
			}
		}
		in.mu.Unlock()
		if len(ends) >= replaced {
			for _, m := range ends {
				if m["exit"] != exit || m["stop"] == "killed at the deadline" {
					t.Errorf("a replaced worker stopped with exit %v, stop %v; want %s, not killed", m["exit"], m["stop"], exit)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers stopped, want %d; logs:\n%s", len(ends), replaced, in.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopHandlerRan is the line direct-stopper.js writes from its handler.
var stopHandlerRan = regexp.MustCompile(`(?m)^stop handler ran pid (\d+)$`)

// checkStopHandlers checks that the replaced workers ran their stop
// handler once each.
func checkStopHandlers(t *testing.T, in *instance, replaced int) {
	t.Helper()
	ran := map[string]int{}
	for _, m := range stopHandlerRan.FindAllStringSubmatch(in.stdout.String(), -1) {
		ran[m[1]]++
	}
	for pid, n := range ran {
		if n != 1 {
			t.Errorf("pid %s ran its stop handler %d times, want once", pid, n)
		}
	}
	if len(ran) != replaced {
		t.Errorf("%d workers ran their stop handler, want %d; stdout:\n%s", len(ran), replaced, in.stdout.String())
	}
}
