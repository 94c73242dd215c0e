package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// healthChecks reads percore_health_checks_total from /metrics, by
// "check/result" ("ping/passed").
func healthChecks(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range scrape(t, in)["percore_health_checks_total"].GetMetric() {
		var check, result string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "check":
				check = l.GetValue()
			case "result":
				result = l.GetValue()
			}
		}
		out[check+"/"+result] = m.GetCounter().GetValue()
	}
	return out
}

// restarts sums the workers' restarts in /status.
func restarts(t *testing.T, in *instance) int {
	t.Helper()
	n := 0
	for _, w := range getStatus(t, in).Workers {
		n += w.Restarts
	}
	return n
}

// awaitPings waits until the workers of each instance passed n pings in
// all, and fails as soon as one restarted, failed a check or was checked
// another way.
func awaitPings(t *testing.T, n float64, ins map[string]*instance) {
	t.Helper()
	deadline := time.Now().Add(testutil.Scaled(time.Duration(n) * time.Second))
	for name, in := range ins {
		for {
			got := healthChecks(t, in)
			if r := restarts(t, in); r > 0 || got["ping/failed"] > 0 || got["options/passed"]+got["options/failed"] > 0 {
				t.Fatalf("%s: %d restarts, health checks %v; want every check a passed ping; logs:\n%s",
					name, r, got, in.logs.String())
			}
			if got["ping/passed"] >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v pings passed, want %v; logs:\n%s", name, got["ping/passed"], n, in.logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// loadClient runs testdata/protocol-load.js against addr until stop.
type loadClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *strings.Builder
}

func startProtocolLoad(t *testing.T, proto, addr string, env ...string) *loadClient {
	t.Helper()
	cmd := exec.Command("node", filepath.Join("testdata", "protocol-load.js"), proto, addr)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &loadClient{cmd: cmd, in: stdin, out: &strings.Builder{}}
	cmd.Stdout, cmd.Stderr = l.out, l.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return l
}

// stop ends the load and returns how many requests passed and failed.
func (l *loadClient) stop(t *testing.T) (ok, failed int, errs []string) {
	t.Helper()
	l.in.Close()
	done := make(chan error, 1)
	go func() { done <- l.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("load client: %v: %s", err, l.out.String())
		}
	case <-time.After(testutil.Scaled(30 * time.Second)):
		_ = l.cmd.Process.Kill()
		<-done
		t.Fatalf("the load client did not stop: %s", l.out.String())
	}
	var sum struct {
		OK     int      `json:"ok"`
		Failed int      `json:"failed"`
		Errors []string `json:"errors"`
	}
	var line string
	for _, l := range strings.Split(l.out.String(), "\n") {
		if strings.HasPrefix(l, `{"ok":`) {
			line = l
		}
	}
	if err := json.Unmarshal([]byte(line), &sum); err != nil {
		t.Fatalf("load client printed %q: %v", l.out.String(), err)
	}
	return sum.OK, sum.Failed, sum.Errors
}

// With the default check, servers that do not speak HTTP/1 (raw TCP, h2c,
// gRPC) in direct mode are pinged through the preload and never ejected:
// over many check intervals of light load, no worker restarts and no
// request fails. The interval is 500 ms so that the run (about 20 s, 10 s
// with -short) spans many default intervals.
func TestDirectModeDefaultHealthCheckFitsEveryProtocol(t *testing.T) {
	needNode(t)
	grpcJS := filepath.Join(testModules(t, "grpc", "@grpc/grpc-js"), "@grpc", "grpc-js")
	rounds := 40.0
	if testing.Short() {
		rounds = 20
	}
	app := filepath.Join("testdata", "direct-protocols.js")
	grpcApp, err := filepath.Abs(filepath.Join("testdata", "grpc-echo.js"))
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--mode", "direct", "--workers", "2", "--health-interval", "500ms", "--"}
	ins := map[string]*instance{
		"echo": launch(t, append(flags, "env", "PROTO=echo", "node", app)...),
		"h2":   launch(t, append(flags, "node", app)...),
		"grpc": launch(t, append(flags, "env", "GRPC_JS="+grpcJS, "node", grpcApp)...),
	}
	loads := map[string]*loadClient{}
	for name, in := range ins {
		waitReady(t, "http://"+in.admin+"/status", 2)
		loads[name] = startProtocolLoad(t, name, in.addr, "GRPC_JS="+grpcJS)
	}
	began := time.Now()
	awaitPings(t, 2*rounds, ins)
	for name, l := range loads {
		ok, failed, errs := l.stop(t)
		t.Logf("%s: %d requests passed, %d failed over %s of %v pings", name, ok, failed,
			time.Since(began).Round(time.Second), healthChecks(t, ins[name])["ping/passed"])
		if failed > 0 || ok < 10 {
			t.Errorf("%s: %d requests passed, %d failed (%v); want none failed", name, ok, failed, errs)
		}
		if strings.Contains(ins[name].logs.String(), "ejecting worker") {
			t.Errorf("%s: a worker was ejected; logs:\n%s", name, ins[name].logs.String())
		}
	}
}

// An app that logs every request it receives logs none of percore's
// health checks, in proxy mode with the default check, on node, deno run
// and bun: they are pings that its handlers never see.
func TestProxyModeHealthCheckStaysOutOfTheAppsLog(t *testing.T) {
	needNode(t)
	apps := map[string][]string{"node": {"node"}}
	if !testing.Short() {
		apps["deno"] = []string{runtimeBin(t, "deno"), "run", "--allow-env", "--allow-net"}
		apps["bun"] = []string{runtimeBin(t, "bun")}
	}
	ins := map[string]*instance{}
	for name, argv := range apps {
		args := append([]string{"--workers", "2", "--health-interval", "200ms", "--"}, argv...)
		ins[name] = launch(t, append(args, filepath.Join("testdata", "request-log.mjs"))...)
	}
	for _, in := range ins {
		waitReady(t, "http://"+in.admin+"/status", 2)
	}
	awaitPings(t, 20, ins) // 10 rounds of 2 workers
	for name, in := range ins {
		if _, err := client.Get("http://" + in.addr + "/mark"); err != nil {
			t.Fatalf("%s: GET /mark: %v", name, err)
		}
		deadline := time.Now().Add(testutil.Scaled(10 * time.Second))
		for !strings.Contains(in.stdout.String(), "request GET /mark") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the app did not log GET /mark; stdout:\n%s", name, in.stdout.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		var logged []string
		for _, line := range strings.Split(in.stdout.String(), "\n") {
			if strings.Contains(line, "request ") {
				logged = append(logged, line)
			}
		}
		if len(logged) != 1 {
			t.Errorf("%s: the app logged %d requests, want only GET /mark: %q", name, len(logged), logged)
		}
	}
}

// The cluster module in direct mode is refused at once: percore exits 3
// within 2 s, and the log says why and what to do.
func TestDirectModeRefusesTheClusterModule(t *testing.T) {
	needNode(t)
	began := time.Now()
	in := launch(t, "--mode", "direct", "--workers", "2", "--", "node", filepath.Join("testdata", "direct-cluster.js"))
	code := in.wait(testutil.Scaled(20 * time.Second))
	took := time.Since(began)
	t.Logf("refused in %s", took.Round(time.Millisecond))
	if code != exitCrashLoop || took > testutil.Scaled(2*time.Second) {
		t.Errorf("exit code %d after %s, want %d within 2 s", code, took, exitCrashLoop)
	}
	logs := in.logs.String()
	for _, want := range []string{"the app forks workers with the cluster module", "percore already runs one worker per CPU",
		"remove the cluster module", "--mode proxy", "the app cannot run as started"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
}

// An app that listens on PORT twice is refused with that reason, not
// blamed on npm.
func TestDirectModeNamesAnAppThatListensTwice(t *testing.T) {
	needNode(t)
	in := launch(t, "--mode", "direct", "--workers", "1", "--", "node", filepath.Join("testdata", "direct-listens-twice.js"))
	if code := in.wait(testutil.Scaled(20 * time.Second)); code != exitCrashLoop {
		t.Errorf("exit code %d, want %d", code, exitCrashLoop)
	}
	logs := in.logs.String()
	if !strings.Contains(logs, "the app listens on PORT twice") || strings.Contains(logs, "npm") {
		t.Errorf("the log should name the second listen and not blame npm:\n%s", logs)
	}
}

// npm start in direct mode is warned about at start and refused at the
// first start, naming node as npm's child.
func TestDirectModeRefusesNpmStart(t *testing.T) {
	needNode(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	in := launch(t, "--mode", "direct", "--workers", "1", "--", "npm", "--prefix", filepath.Join(wd, "testdata", "npm-app"), "start")
	if code := in.wait(testutil.Scaled(60 * time.Second)); code != exitCrashLoop {
		t.Errorf("exit code %d, want %d", code, exitCrashLoop)
	}
	logs := in.logs.String()
	for _, want := range []string{"--mode direct will refuse these workers: npm starts node as a child process",
		"a child process of the worker (pid ", "run node itself"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "worker starting"); n != 1 {
		t.Errorf("%d starts, want the first refused at once", n)
	}
}
