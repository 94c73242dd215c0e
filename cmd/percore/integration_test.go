package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type hello struct {
	PID    int    `json:"pid"`
	Worker string `json:"worker"`
}

func TestTwoWorkersServeTraffic(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)

	pids := map[int]string{}
	for i := 0; i < 200; i++ {
		var h hello
		getJSON(t, "http://"+in.addr+"/", &h)
		pids[h.PID] = h.Worker
	}
	if len(pids) != 2 {
		t.Fatalf("200 requests were answered by %d workers (%v), want 2", len(pids), pids)
	}
	ids := map[string]bool{}
	for _, id := range pids {
		ids[id] = true
	}
	if !ids["0"] || !ids["1"] {
		t.Errorf("worker ids = %v, want 0 and 1", ids)
	}

	var env map[string]any
	getJSON(t, "http://"+in.addr+"/env", &env)
	if env["HOST"] != "127.0.0.1" || env["PERCORE_WORKER_COUNT"] != "2" ||
		env["NODE_APP_INSTANCE"] != env["PERCORE_WORKER_ID"] || env["PORT"] == "" {
		t.Errorf("worker env = %v", env)
	}

	in.signal(syscall.SIGTERM)
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, in.logs.String())
	}
}

func TestForwardedAndHopByHopHeaders(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS())

	conn, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /headers HTTP/1.1\r\nHost: example.test:8443\r\n"+
		"Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nUpgrade-Insecure-Requests: 1\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Kept: yes\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	got := string(body)
	for _, want := range []string{`"host":"example.test:8443"`, `"x-forwarded-proto":"http"`,
		`"x-forwarded-host":"example.test:8443"`, `"x-kept":"yes"`, `"upgrade-insecure-requests":"1"`} {
		if !strings.Contains(got, want) {
			t.Errorf("worker did not receive %s; got %s", want, got)
		}
	}
	// The peer is loopback, which is trusted by default: its chain is kept
	// and the peer appended.
	if !strings.Contains(got, `"x-forwarded-for":"6.6.6.6, 127.0.0.1"`) {
		t.Errorf("x-forwarded-for not extended with the peer; got %s", got)
	}
	for _, bad := range []string{"x-secret-hop", "keep-alive", "proxy-authorization"} {
		if strings.Contains(got, `"`+bad+`"`) {
			t.Errorf("hop-by-hop header %s reached the worker: %s", bad, got)
		}
	}
}

func TestKilledWorkerIsReplacedWhileTrafficFlows(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)

	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)
	victim := h.PID

	var failed, ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + in.addr + "/")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(-victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker group: %v", err)
	}
	in.waitLog("worker exited", 10*time.Second)
	in.waitLog("worker ready", 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d GET requests failed while a worker was killed", failed.Load(), failed.Load()+ok.Load())
	}
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		getJSON(t, "http://"+in.addr+"/", &h)
		seen[h.PID] = true
	}
	if seen[victim] || len(seen) != 2 {
		t.Errorf("pids after the kill = %v, want 2 without the killed %d", seen, victim)
	}
}

// TestGETWaitsForTheReplacementOfItsKilledWorker kills the only worker
// with a GET in flight on it, five times: each GET, which may be sent
// again, is answered by the replacement rather than failing while the
// supervisor has not yet seen the death.
func TestGETWaitsForTheReplacementOfItsKilledWorker(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--", "node", appJS())
	type result struct {
		status int
		h      hello
		err    error
	}
	for i := 0; i < 5; i++ {
		var h hello
		getJSON(t, "http://"+in.addr+"/", &h)
		victim := h.PID
		say := fmt.Sprintf("in-flight-%d-%d", i, victim)
		done := make(chan result, 1)
		go func() {
			var r result
			resp, err := client.Get("http://" + in.addr + "/slow?ms=1000&say=" + say)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			r.status = resp.StatusCode
			r.err = json.NewDecoder(resp.Body).Decode(&r.h)
			done <- r
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(in.stdout.String(), say+"\n") {
			if time.Now().After(deadline) {
				t.Fatalf("try %d: the worker never got the GET; stdout %q", i, in.stdout.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatalf("try %d: kill worker %d: %v", i, victim, err)
		}
		var r result
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("try %d: no answer to the GET within 30s; logs:\n%s", i, in.logs.String())
		}
		if r.err != nil || r.status != 200 || r.h.PID == victim || r.h.PID == 0 {
			t.Fatalf("try %d: GET in flight when its worker %d was killed: status %d, pid %d, error %v; "+
				"want 200 from the replacement; logs:\n%s", i, victim, r.status, r.h.PID, r.err, in.logs.String())
		}
	}
}

func TestInFlightRequestCompletesOnSIGTERM(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "2", "--shutdown-timeout", "10s", "--", "node", appJS())
	in.waitLog("worker ready", 30*time.Second)

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get("http://" + in.addr + "/slow?ms=1500")
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond)
	in.signal(syscall.SIGTERM)

	// The listener closes at once.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", in.addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the public listener still accepts connections after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Errorf("in-flight request: status %d, error %v; want 200", r.status, r.err)
	}
	if code := in.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0; logs:\n%s", code, in.logs.String())
	}
}

func TestReadyzTurns503AtShutdown(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--shutdown-timeout", "10s", "--", "node", appJS())
	if code := status(t, "http://"+in.admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d before shutdown, want 200", code)
	}
	// Keep a request in flight so the stop takes a while.
	go func() {
		resp, err := client.Get("http://" + in.addr + "/slow?ms=2000")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	in.signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if code := status(t, "http://"+in.admin+"/readyz"); code != 503 {
		t.Errorf("/readyz = %d during shutdown, want 503", code)
	}
	if code := status(t, "http://"+in.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d during shutdown, want 200", code)
	}
	in.wait(15 * time.Second)
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestBootCrashLoopExitsWithMessage(t *testing.T) {
	needNode(t)
	in := launch(t, "--workers", "2", "--", "node", "testdata/crash.js")
	code := in.wait(60 * time.Second)
	if code != exitCrashLoop {
		t.Errorf("exit code = %d, want %d; logs:\n%s", code, exitCrashLoop, in.logs.String())
	}
	logs := in.logs.String()
	for _, want := range []string{"keeps failing", "database URL is not set"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestSlowStartThenCrashExits3: an app that is ready after 1.5 s and dies
// 0.5 s later fails each start, since the minimum uptime counts from
// readiness, so percore gives up after five and exits 3. Counted from the
// process's start, each life passed the minimum uptime and percore
// restarted the worker forever.
func TestSlowStartThenCrashExits3(t *testing.T) {
	needNode(t)
	in := launch(t, "--workers", "1", "--", "node", "testdata/slow-crash.js")
	code := in.wait(90 * time.Second)
	if code != exitCrashLoop {
		t.Fatalf("exit code = %d, want %d; logs:\n%s", code, exitCrashLoop, in.logs.String())
	}
	logs := in.logs.String()
	for _, want := range []string{"failed 5 times in a row", "boot failure", "lost the database connection"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, `"worker ready"`); n != 5 {
		t.Errorf("the worker was ready %d times, want 5 (one per failed start)", n)
	}
}

func TestBadInputFailsFast(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--workers", "banana", "--", "node", "x.js"}, exitUsage, "--workers"},
		{[]string{"--workers", "0", "node", "x.js"}, exitUsage, "--workers"},
		{[]string{"--heap", "-5", "node", "x.js"}, exitUsage, "--heap"},
		{[]string{"--shutdown-timeout", "5x", "node", "x.js"}, exitUsage, "--shutdown-timeout"},
		{[]string{"--bogus", "node", "x.js"}, exitUsage, "--bogus"},
		{[]string{"--workers", "2"}, exitUsage, "missing COMMAND"},
		{[]string{"--", "no-such-command-percore"}, exitNotFound, "no-such-command-percore"},
		{[]string{"--", "testdata/app.js"}, exitCannotExec, "testdata/app.js"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cmd := exec.Command(percoreBin, c.args...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != c.code {
				t.Errorf("exit code = %d, want %d; output %q", code, c.code, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) || strings.Contains(lines[0], "panic") {
				t.Errorf("output = %q, want one line naming %q", out, c.want)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s to fail", time.Since(start))
			}
		})
	}
}
