package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// underFileLimit is a wrapper that runs percore with its soft and hard
// limits on open files set to soft and hard.
func underFileLimit(soft, hard int) []string {
	return []string{"sh", "-c", fmt.Sprintf(`ulimit -S -n %d && ulimit -H -n %d && exec "$@"`, soft, hard), "sh"}
}

// fileLimit reads the soft and hard "Max open files" of pid.
func fileLimit(t *testing.T, pid int) (soft, hard string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			return f[0], f[1]
		}
	}
	t.Fatalf("no open files limit for %d", pid)
	return "", ""
}

// noKeepAlive is a client that closes each connection after its answer,
// so that it holds no descriptor of percore's between requests.
var noKeepAlive = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func fetchOnce(url string) (int, string, error) {
	resp, err := noKeepAlive.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// TestFileLimitRaisedForPercoreNotWorkers: percore runs with its soft limit
// on open files raised to the hard limit (the Go runtime sets hard-1), and
// its workers start with the soft limit percore was started with. The
// worker here is a shell running node: node raises its own limit at start.
func TestFileLimitRaisedForPercoreNotWorkers(t *testing.T) {
	needNode(t)
	in := startVia(t, underFileLimit(512, 2048), "--workers", "1", "--", "sh", "-c", "node "+appJS()+"; exit 1")
	if soft, hard := fileLimit(t, in.cmd.Process.Pid); (soft != "2047" && soft != "2048") || hard != "2048" {
		t.Errorf("percore's open files limit %s/%s, want 2048/2048 (or 2047/2048)", soft, hard)
	}
	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)
	if soft, hard := fileLimit(t, parentOf(t, h.PID)); soft != "512" || hard != "2048" {
		t.Errorf("the worker's open files limit %s/%s, want the original 512/2048", soft, hard)
	}
}

// startVia is start through a wrapper command.
func startVia(t *testing.T, wrapper []string, args ...string) *instance {
	t.Helper()
	in := launchVia(t, wrapper, args...)
	in.waitLog("worker ready", 30*time.Second)
	return in
}

// TestOutOfFileDescriptorsListenersRecover: silent connections use up
// percore's descriptors. The public listener must not stop for good, as
// fasthttp's accept loop does on EMFILE; /healthz must say 503 meanwhile
// (the admin listener answers through its spare descriptor); once the
// connections are gone the public port serves again within 2s and /healthz
// is 200. One warning per burst, no worker taken out of rotation.
func TestOutOfFileDescriptorsListenersRecover(t *testing.T) {
	needNode(t)
	const limit = 128
	in := startVia(t, underFileLimit(limit, limit), "--workers", "1", "--control", "off",
		"--health-interval", "200ms", "--", "node", appJS())
	var h hello
	getJSON(t, "http://"+in.addr+"/", &h)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range limit + 32 { // more than percore can accept: the rest wait in the backlog
		c, err := net.DialTimeout("tcp", in.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(held), err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, err := fetchOnce("http://" + in.admin + "/healthz")
		if err == nil && code == 503 && strings.Contains(body, "too many open files") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz while out of descriptors = %d %q (%v), want 503 saying why; logs:\n%s",
				code, body, err, in.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.findLog("listener cannot accept connections", 5*time.Second)
	if code, _, _ := fetchOnce("http://" + in.admin + "/readyz"); code != 503 {
		t.Errorf("/readyz while out of descriptors = %d, want 503", code)
	}

	for _, c := range held {
		c.Close()
	}
	held = nil
	released := time.Now()
	for {
		code, _, err := fetchOnce("http://" + in.addr + "/")
		if err == nil && code == 200 {
			break
		}
		if time.Since(released) > 2*time.Second {
			t.Fatalf("the public port does not serve 2s after the connections closed: %d %v; logs:\n%s",
				code, err, in.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		code, body, err := fetchOnce("http://" + in.admin + "/healthz")
		if err == nil && code == 200 {
			break
		}
		if time.Since(released) > 2*time.Second {
			t.Fatalf("/healthz 2s after the connections closed = %d %q %v", code, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.findLog("listener accepting again", 15*time.Second)

	in.mu.Lock()
	warns := 0
	for _, m := range in.seen {
		msg, _ := m["@message"].(string)
		if strings.HasPrefix(msg, "listener cannot accept connections") && m["listener"] == "public" {
			warns++
		}
		if strings.HasPrefix(msg, "worker failed a health check") || strings.HasPrefix(msg, "worker out of rotation") {
			t.Errorf("the worker paid for percore's shortage: %v", m)
		}
	}
	in.mu.Unlock()
	if warns != 1 {
		t.Errorf("%d warnings for the public listener's burst, want 1", warns)
	}
}

// TestAdminConnectionsCapped: thousands of keep-alive connections to the
// admin listener do not grow percore's memory, and each new one is served
// (older ones are closed to make room); once they are gone a probe is
// answered.
func TestAdminConnectionsCapped(t *testing.T) {
	needNode(t)
	const conns = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < conns+200 {
		t.Skipf("open files limit %d is below %d", lim.Cur, conns+200)
	}
	in := start(t, "--workers", "1", "--control", "off", "--", "node", appJS())
	pid := in.cmd.Process.Pid
	if code, _, err := fetchOnce("http://" + in.admin + "/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz = %d %v", code, err)
	}
	before, err := rssKiB(pid)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	served := 0
	for range conns {
		c, err := net.DialTimeout("tcp", in.admin, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(held), err)
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
			continue // closed at once: over the cap
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			served++
		}
	}
	after, err := rssKiB(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("percore RSS %d KiB before, %d KiB with %d admin connections opened (%d served, kept alive)",
		before, after, conns, served)
	if served != conns {
		t.Errorf("%d of %d new admin connections served, want every one", served, conns)
	}
	if grown := after - before; grown > 16<<10 {
		t.Errorf("percore's RSS grew by %d KiB with %d admin connections, want a bounded growth", grown, conns)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, err := fetchOnce("http://" + in.admin + "/healthz")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after the connections closed = %d %v", code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdSilent opens n connections to addr that send nothing, and closes them
// when the test ends.
func holdSilent(t *testing.T, addr string, n int) {
	t.Helper()
	held := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(held), err)
		}
		held = append(held, c)
	}
}

// openFiles returns how many files pid has open, or -1.
func openFiles(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// TestProbesAnswerWhileOutOfDescriptors: while silent connections to the
// public port hold every descriptor percore may open, every probe of
// /healthz and /readyz, each on a new connection with a 1 s timeout,
// answers 503 saying why, within the second: none times out, although the
// public listener keeps retrying its accepts and takes any descriptor that
// frees.
func TestProbesAnswerWhileOutOfDescriptors(t *testing.T) {
	needNode(t)
	const limit, polls = 128, 20
	in := startVia(t, underFileLimit(limit, limit), "--workers", "1", "--control", "off",
		"--header-timeout", "60s", "--", "node", appJS())
	pid := in.cmd.Process.Pid
	holdSilent(t, in.addr, limit+32) // more than percore can accept: the rest wait in the backlog
	in.findLog("listener cannot accept connections", 10*time.Second)
	full := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if full = openFiles(pid); full >= limit-1 {
			break
		}
	}
	if full < limit-1 {
		t.Fatalf("percore has %d files open, not its limit %d: the test did not exhaust it", full, limit)
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ok := map[string]int{}
	var slowest time.Duration
	var failed []string
	for i := range polls {
		path := "/healthz"
		if i%2 == 1 {
			path = "/readyz?verbose"
		}
		begun := time.Now()
		resp, err := c.Get("http://" + in.admin + path)
		if err != nil {
			failed = append(failed, path+": "+err.Error())
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(begun)
		slowest = max(slowest, took)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "too many open files") || took > time.Second {
			failed = append(failed, fmt.Sprintf("%s: %d %q in %s", path, resp.StatusCode, body, took))
			continue
		}
		ok[path]++
		time.Sleep(100 * time.Millisecond) // spread the polls over the public listener's retries
	}
	t.Logf("%d files open under a limit of %d: /healthz %d of %d polls 503 with the reason within 1s, /readyz %d of %d (slowest %s)",
		full, limit, ok["/healthz"], polls/2, ok["/readyz?verbose"], polls/2, slowest.Round(time.Microsecond))
	if len(failed) > 0 {
		t.Errorf("%d of %d polls did not answer 503 with the reason within 1s: %q", len(failed), polls, failed)
	}
}
