//go:build chaos

package chaos

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The front door: what a client, a flood or a sloppy worker must not be
// able to do to percore's listeners, its readiness and its clients.

// TestFileDescriptorExhaustion runs percore under a low open file limit
// (soft and hard, so that it cannot raise it) and fills it with silent
// connections, first on the public port, then on both ports. While they
// are held, /healthz is polled every 100 ms with a 1 s timeout: with the
// public port full, every poll answers 503 saying why within the second.
// Within 2 s of their release the public port answers again and /healthz
// says 200; percore does not exit, and its worker comes back to ready.
func TestFileDescriptorExhaustion(t *testing.T) {
	f := book.row(t, "10", "fd exhaustion: silent connections up to percore's open file limit, public then admin and public, then released")
	needNode(t)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit is not installed")
	}
	const limit = 256
	in := start(t, 1, options{
		args: []string{"--workers", "1", "--header-timeout", "60s",
			"--health-interval", "200ms", "--health-threshold", "2", "--", "node", appPath("app.js")},
		wrapper: []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", limit, limit), "--"},
	})
	hold := time.Second
	if !testing.Short() {
		hold = 5 * time.Second
	}
	// First the public port alone; then a few admin connections (below the
	// admin listener's cap, which closes the ones above it), the public
	// port up to the limit, and the admin port again, so that both accept
	// loops meet EMFILE.
	for _, target := range []struct {
		name  string
		addrs []string
	}{{"public", []string{in.addr}}, {"admin and public", []string{in.admin, in.addr}}} {
		var h held
		from := in.logCount()
		opened := 0
		for opened < limit+64 {
			addr := target.addrs[0]
			if len(target.addrs) > 1 && opened >= 32 && opened < limit {
				addr = target.addrs[1]
			}
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				break
			}
			h.add(c)
			opened++
		}
		// Every descriptor percore may have is in use once it has accepted
		// what it can.
		full := 0
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if full = fdCount(in.pid()); full >= limit-1 {
				break
			}
		}
		// The accept loops and the health checks meet EMFILE meanwhile.
		polls := pollFull(in.admin, hold)
		h.closeAll()
		released := time.Now()
		publicBack, healthzBack := awaitAnswer(in.addr, "/", 0, released.Add(2*time.Second)),
			awaitAnswer(in.admin, "/healthz", 200, released.Add(2*time.Second))
		select {
		case <-in.exited:
			t.Fatalf("%s: percore exited while its open files were exhausted; its last lines:\n%s", target.name, in.recentStderr())
		default:
		}
		_, ready := in.awaitReady(1, 15*time.Second)
		warns := 0
		for _, l := range in.logsMatching("", from) {
			if l.m["@level"] == "warn" {
				warns++
			}
		}
		f.add("%s: %d connections opened, percore's fds %d of %d; held: %s; after release: public answers in %s, /healthz 200 in %s, worker ready %v; %d WARN lines",
			target.name, opened, full, limit, polls, backIn(publicBack, released), backIn(healthzBack, released), ready, warns)
		// With silent connections queued on the admin port as well, its one
		// spare descriptor serves them in turn, each until the admin read
		// timeout: a probe waits behind them. Only the public port's flood
		// is bound by the promise.
		if target.name == "public" && (polls.asked == 0 || polls.ok != polls.asked) {
			t.Errorf("%s: /healthz while out of descriptors: %s, want every poll 503 with the reason within 1s", target.name, polls)
		}
		if full < limit-1 {
			t.Errorf("%s: percore reached %d open files, not its limit %d: the test did not exhaust it", target.name, full, limit)
		}
		if publicBack.IsZero() {
			t.Errorf("%s: the public port did not answer within 2s of the release; percore's last lines:\n%s", target.name, in.recentStderr())
		}
		if healthzBack.IsZero() {
			t.Errorf("%s: /healthz did not answer 200 within 2s of the release", target.name)
		}
		if !ready {
			t.Errorf("%s: the worker was not ready again within 15s of the release", target.name)
		}
	}
}

// fullPolls tallies the polls of /healthz while descriptors are exhausted.
type fullPolls struct {
	asked, ok int           // ok: 503 saying "too many open files" within 1 s
	slowest   time.Duration // of the answered ones
	other     map[string]int
}

func (p fullPolls) String() string {
	s := fmt.Sprintf("/healthz %d of %d polls 503 with the reason within 1s (slowest %s)", p.ok, p.asked, ms(p.slowest))
	for what, n := range p.other {
		s += fmt.Sprintf(", %s×%d", what, n)
	}
	return s
}

// pollFull asks http://admin/healthz every 100 ms for d, each time on a
// new connection with a 1 s timeout, as a platform's probe does.
func pollFull(admin string, d time.Duration) fullPolls {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	p := fullPolls{other: map[string]int{}}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		p.asked++
		begun := time.Now()
		resp, err := c.Get("http://" + admin + "/healthz")
		if err != nil {
			p.other["timeout or error"]++
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(begun)
		p.slowest = max(p.slowest, took)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "too many open files") || took > time.Second {
			p.other[strconv.Itoa(resp.StatusCode)]++
			continue
		}
		p.ok++
	}
	return p
}

// awaitAnswer asks http://addr+path until the answer has status want (0:
// any HTTP answer) or deadline, and returns when it did, or the zero time.
func awaitAnswer(addr, path string, want int, deadline time.Time) time.Time {
	c := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://" + addr + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}
}

func backIn(at, from time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return ms(at.Sub(from))
}

// ejectors are requests percore cannot forward as they are. Each once
// counted as a failure of the worker, so a client could take every worker
// out of rotation with them.
var ejectors = []string{
	"GET / HTTP/1.0\r\n\r\n",
	"GET https://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
}

// TestReadinessFlipAttempt mixes requests that a client could use to get
// workers ejected into a normal load. /readyz stays 200 throughout, no
// worker leaves the rotation, and the normal traffic is served.
func TestReadinessFlipAttempt(t *testing.T) {
	f := book.row(t, "11", "readiness-flip attempt: HTTP/1.0 without Host, GET https://x/, Connection: Content-Length, under load")
	needNode(t)
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--", "node", appPath("app.js")}})
	from := in.logCount()
	l := startLoad(t, in.addr, stream{name: "GET /", clients: 4, req: get("/"), pace: 2 * time.Millisecond})
	dur := 4 * time.Second
	if !testing.Short() {
		dur = 15 * time.Second
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{} // the attacks' answers, "502" or "closed"
	for _, raw := range ejectors {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ex := rawExchange(in.addr, raw, true, 2*time.Second)
					mu.Lock()
					answers[ex.ended()]++
					mu.Unlock()
				}
			}()
		}
	}
	var polls, notReady int
	var firstNotReady time.Duration
	began := time.Now()
	for time.Since(began) < dur {
		polls++
		code := 0
		if resp, err := adminClient.Get("http://" + in.admin + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		if code != 200 {
			if notReady == 0 {
				firstNotReady = time.Since(began)
			}
			notReady++
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	normal := count(l.stop(), nil)
	f.requests(normal)
	sent := 0
	for _, n := range answers {
		sent += n
	}
	ejected := in.countLogs("worker out of rotation", from) + in.countLogs("ejecting worker", from)
	f.add("%d attack requests (%s); /readyz polled %d times, not 200 %d times; ejections %d", sent, countsText(answers), polls, notReady, ejected)
	if notReady > 0 {
		t.Errorf("/readyz was not 200 in %d of %d polls, first after %s: clients took workers out of rotation", notReady, polls, ms(firstNotReady))
	}
	if ejected > 0 {
		t.Errorf("percore took workers out of rotation %d times for its clients' requests", ejected)
	}
	if answers["502"] > 0 {
		t.Errorf("%d attack requests answered 502: a request percore could not forward blamed on the worker", answers["502"])
	}
	if rate := float64(normal.ok) / float64(max(normal.sent, 1)); rate < 0.99 || normal.sent == 0 {
		t.Errorf("normal traffic: %d of %d requests ok: %s", normal.ok, normal.sent, normal.reasonsText())
	}
}

// TestExtraBytesUnderLoad runs a worker that writes more than its answers'
// framing, at once (a body longer than its Content-Length) and 3 ms after
// an answer (a whole second response, on a connection with no request on
// its way), under 64 keep-alive connections. Every answer names the path it
// answers, with a token per request: each client must get exactly its own
// answer, every time.
func TestExtraBytesUnderLoad(t *testing.T) {
	f := book.row(t, "12", "a worker writes past its answers' framing, at once and 3 ms after the answer, under 64 connections")
	needNode(t)
	in := start(t, 1, options{args: []string{"--workers", "1", "--health-interval", "off", "--", "node", appPath("extra-app.js")}})
	const conns = 64
	dur := 3 * time.Second
	if !testing.Short() {
		dur = 10 * time.Second
	}
	var sent, ok, crossed atomic.Int64
	var mu sync.Mutex
	reasons := map[string]int{}
	var examples []string
	note := func(reason, example string) {
		mu.Lock()
		defer mu.Unlock()
		reasons[reason]++
		if example != "" && len(examples) < 5 {
			examples = append(examples, example)
		}
	}
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for seq := 0; time.Now().Before(deadline); seq++ {
				kind := "n"
				switch seq % 8 {
				case 0:
					kind = "extra"
				case 1:
					kind = "late"
				}
				path := fmt.Sprintf("/%s/%d-%d-%08x", kind, c, seq, rand.Uint32())
				if conn == nil {
					var err error
					if conn, err = net.DialTimeout("tcp", in.addr, 5*time.Second); err != nil {
						sent.Add(1)
						note("dial", "")
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReader(conn)
				}
				sent.Add(1)
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				resp, body, err := getOn(conn, br, path)
				switch {
				case err != nil:
					note("error", "")
					conn.Close()
					conn = nil
					continue
				case resp.StatusCode != 200:
					note(strconv.Itoa(resp.StatusCode), "")
				case string(body) != "for "+path+"\n" || resp.Header.Get("X-Injected") != "":
					crossed.Add(1)
					note("crossed", fmt.Sprintf("%s got %q", path, body))
				default:
					ok.Add(1)
				}
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	wg.Wait()
	tl := tally{sent: int(sent.Load()), ok: int(ok.Load()), reasons: reasons}
	f.requests(tl)
	f.add("%d requests on %d connections (1 in 8 overlong, 1 in 8 followed by a second response): %d got another request's answer",
		tl.sent, conns, crossed.Load())
	if crossed.Load() > 0 {
		t.Errorf("%d of %d answers were not the client's own, e.g. %s", crossed.Load(), tl.sent, strings.Join(examples, "; "))
	}
	if rate := float64(tl.ok+int(crossed.Load())) / float64(max(tl.sent, 1)); rate < 0.99 || tl.sent == 0 {
		t.Errorf("%d of %d requests failed: %s", tl.failed(), tl.sent, tl.reasonsText())
	}
}

// getOn sends GET path on conn and reads the answer whole.
func getOn(conn net.Conn, br *bufio.Reader, path string) (*http.Response, []byte, error) {
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: chaos.test\r\n\r\n", path); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}
