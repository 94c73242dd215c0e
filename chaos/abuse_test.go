//go:build chaos

package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAbuse runs one percore with normal traffic flowing and abuses its
// public port, one attack after another. Through each, the normal traffic
// keeps a success rate of at least 99%, and percore's resident memory and
// open files stay bounded and come back down once the attack ends.
func TestAbuse(t *testing.T) {
	needNode(t)
	const workers = 2
	in := start(t, workers, options{args: []string{"--workers", strconv.Itoa(workers), "--header-timeout", headerTimeout.String(),
		"--", "node", appPath("app.js")}})
	smp := newSampler(in.pid())
	t.Cleanup(smp.stop)
	l := startLoad(t, in.addr,
		stream{name: "GET /", clients: 4, req: get("/"), pace: 2 * time.Millisecond},
		stream{name: "POST /slow?ms=10", clients: 2, req: post("/slow?ms=10", 512), pace: 2 * time.Millisecond},
	)
	time.Sleep(time.Second)
	a := &abuse{in: in, load: l, smp: smp, limit: procFileLimit(in.pid()), before: smp.read()}
	t.Run("slowloris", func(t *testing.T) { a.phase(t, "6a", "slowloris: 500 connections dribbling a header", a.slowloris) })
	t.Run("connection flood", func(t *testing.T) { a.phase(t, "6b", "connection flood: 3000 silent connections held", a.flood) })
	t.Run("idle keep-alive", func(t *testing.T) { a.phase(t, "6c", "1000 idle keep-alive connections", a.idle) })
	t.Run("huge headers", func(t *testing.T) { a.phase(t, "6d", "100 KB request headers", a.hugeHeaders) })
	t.Run("smuggling", func(t *testing.T) {
		a.phase(t, "6e", "bad chunked bodies and request-smuggling shapes", a.smuggling)
	})
	t.Run("memory comes back down", a.comesBackDown)
}

// abuse is the shared state of TestAbuse's phases.
type abuse struct {
	in     *instance
	load   *load
	smp    *sampler
	limit  string // percore's open file limit
	before usage  // percore's usage before the first attack
}

// headerTimeout is percore's --header-timeout in TestAbuse.
const headerTimeout = 2 * time.Second

// maxPercoreRSS bounds percore's resident memory under attack: the most
// percore keeps back for itself, the kernel and the page cache when it
// sizes heaps (docs/sizing.md, "How sizing works").
const maxPercoreRSS = 256 << 20

// phase runs one attack and checks what holds through every attack.
func (a *abuse) phase(t *testing.T, id, name string, attack func(t *testing.T, f *figures)) {
	f := book.row(t, id, name)
	base := a.smp.read()
	began := a.load.since(time.Now())
	attack(t, f)
	// Back down: the open files return to where they were (the normal
	// traffic's connections come and go, hence the slack).
	after, settled := a.smp.settle(base.fds+24, 15*time.Second)
	ended := a.load.since(time.Now())
	peak := a.smp.peak(base.at)
	normal := count(a.load.snapshot(), between(began, ended))
	f.requests(normal)
	f.add("percore fds %d → peak %d → %d, RSS %s → peak %s → %s",
		base.fds, peak.fds, after.fds, mib(base.rss), mib(peak.rss), mib(after.rss))
	if rate := float64(normal.ok) / float64(max(normal.sent, 1)); rate < 0.99 || normal.sent == 0 {
		t.Errorf("normal traffic: %d of %d requests ok (%.4f), want at least 99%%: %s",
			normal.ok, normal.sent, rate, normal.reasonsText())
	}
	if !settled {
		t.Errorf("percore's open files did not come back down: %d before, %d after", base.fds, after.fds)
	}
	if peak.rss > maxPercoreRSS {
		t.Errorf("percore's RSS reached %s, over %s", mib(peak.rss), mib(maxPercoreRSS))
	}
}

// noneSeen fails the test if a worker printed that it saw a /smuggled
// request: the attacks send nothing a worker may see there.
func (a *abuse) noneSeen(t *testing.T) {
	time.Sleep(300 * time.Millisecond) // the workers' lines arrive
	if saw := a.in.appLinesWith("chaos-saw"); len(saw) > 0 {
		t.Errorf("a worker saw requests it must never see: %q", saw)
	}
}

// closings summarises how long connections stayed open before percore
// closed them, and how they ended.
func closings(exs []exchange) (string, time.Duration) {
	var ds []time.Duration
	ends := map[string]int{}
	for _, ex := range exs {
		ends[ex.ended()]++
		if ex.connected && !isTimeout(ex.err) {
			ds = append(ds, ex.closedIn)
		}
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return countsText(ends), 0
	}
	return fmt.Sprintf("%s; closed by percore after %s–%s (median %s)", countsText(ends),
		ms(ds[0]), ms(ds[len(ds)-1]), ms(ds[len(ds)/2])), ds[len(ds)-1]
}

// slowloris opens 500 connections that send a request line and then one
// header line every 400 ms, never ending the header.
func (a *abuse) slowloris(t *testing.T, f *figures) {
	const conns = 500
	exs := make([]exchange, conns)
	var wg sync.WaitGroup
	dials := make(chan struct{}, 100)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dials <- struct{}{}
			c, err := net.DialTimeout("tcp", a.in.addr, 5*time.Second)
			<-dials
			if err != nil {
				exs[i] = exchange{err: err}
				return
			}
			defer c.Close()
			exs[i] = dribble(c, "GET /smuggled-slowloris HTTP/1.1\r\nHost: x\r\n", "X-Slow: a\r\n", 400*time.Millisecond, 12*time.Second)
		}()
	}
	wg.Wait()
	a.noneSeen(t)
	summary, longest := closings(exs)
	f.add("%d connections: %s", conns, summary)
	for _, ex := range exs {
		if !ex.connected || isTimeout(ex.err) || ex.status == 200 {
			t.Errorf("a slowloris connection ended %q after %s; want closed at the %s header timeout", ex.ended(), ex.closedIn, headerTimeout)
			break
		}
	}
	if longest > headerTimeout+2*time.Second {
		t.Errorf("a slowloris connection stayed open %s, past the %s header timeout", longest, headerTimeout)
	}
}

// dribble writes first, then piece every period, until the server closes
// the connection or limit passes.
func dribble(c net.Conn, first, piece string, period, limit time.Duration) exchange {
	began := time.Now()
	_ = c.SetDeadline(began.Add(limit)) // the read reports a failure
	done := make(chan exchange, 1)
	go func() {
		out, err := io.ReadAll(c)
		ex := exchange{connected: true, err: err, closedIn: time.Since(began)}
		ex.status, ex.answers = statusOf(out)
		done <- ex
	}()
	if _, err := io.WriteString(c, first); err != nil {
		c.Close()
		return <-done
	}
	for range int(limit / period) {
		select {
		case ex := <-done:
			return ex
		case <-time.After(period):
			if _, err := io.WriteString(c, piece); err != nil {
				return <-done
			}
		}
	}
	return <-done
}

// flood opens 3000 connections as fast as it can and holds them without
// sending a byte.
func (a *abuse) flood(t *testing.T, f *figures) {
	const conns = 3000
	if lim := fileLimit(); lim < conns+1000 {
		t.Skipf("the open file limit of the test process is %d; the flood needs %d", lim, conns+1000)
	}
	exs := make([]exchange, conns)
	next := make(chan int, conns)
	for i := range conns {
		next <- i
	}
	close(next)
	var opened sync.WaitGroup // the dialers
	var readers sync.WaitGroup
	var connected atomic.Int64
	began := time.Now()
	for range 64 {
		opened.Add(1)
		go func() {
			defer opened.Done()
			for i := range next {
				c, err := net.DialTimeout("tcp", a.in.addr, 5*time.Second)
				if err != nil {
					exs[i] = exchange{err: err}
					continue
				}
				connected.Add(1)
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer c.Close()
					dialled := time.Now()
					_ = c.SetReadDeadline(dialled.Add(15 * time.Second)) // the read reports it
					out, err := io.ReadAll(c)
					exs[i] = exchange{connected: true, err: err, closedIn: time.Since(dialled)}
					exs[i].status, exs[i].answers = statusOf(out)
				}()
			}
		}()
	}
	opened.Wait()
	openIn := time.Since(began)
	readers.Wait()
	summary, longest := closings(exs)
	f.add("%d of %d connected in %s (open file limits: percore %s, the test %d): %s",
		connected.Load(), conns, ms(openIn), a.limit, fileLimit(), summary)
	if connected.Load() != conns {
		t.Errorf("%d of %d connections could be opened", connected.Load(), conns)
	}
	if longest > headerTimeout+3*time.Second {
		t.Errorf("a silent connection stayed open %s, past the %s header timeout", longest, headerTimeout)
	}
	for _, ex := range exs {
		if ex.connected && isTimeout(ex.err) {
			t.Errorf("a silent connection was still open after 15s")
			break
		}
	}
}

// idle opens 1000 keep-alive connections, sends one request on each, lets
// them idle for 3 s, sends another on each, then closes them.
func (a *abuse) idle(t *testing.T, f *figures) {
	const conns = 1000
	var h held
	defer h.closeAll()
	var first, second atomic.Int64
	conn := make([]net.Conn, conns)
	rd := make([]*bufio.Reader, conns)
	each := func(fn func(i int)) {
		var wg sync.WaitGroup
		next := make(chan int, conns)
		for i := range conns {
			next <- i
		}
		close(next)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					fn(i)
				}
			}()
		}
		wg.Wait()
	}
	ask := func(i int) bool {
		if conn[i] == nil {
			return false
		}
		_ = conn[i].SetDeadline(time.Now().Add(10 * time.Second)) // the exchange reports it
		if _, err := io.WriteString(conn[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(rd[i], nil)
		if err != nil {
			return false
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err == nil && resp.StatusCode == 200 && !resp.Close
	}
	each(func(i int) {
		c, err := net.DialTimeout("tcp", a.in.addr, 5*time.Second)
		if err != nil {
			return
		}
		h.add(c)
		conn[i], rd[i] = c, bufio.NewReader(c)
		if ask(i) {
			first.Add(1)
		}
	})
	time.Sleep(3 * time.Second)
	held := a.smp.read()
	each(func(i int) {
		if ask(i) {
			second.Add(1)
		}
	})
	f.add("%d of %d connections answered, %d answered again after 3 s idle; percore held %d fds meanwhile",
		first.Load(), conns, second.Load(), held.fds)
	if first.Load() != conns || second.Load() != conns {
		t.Errorf("%d and then %d of %d keep-alive connections answered", first.Load(), second.Load(), conns)
	}
}

// hugeHeaders sends requests whose header block is 100 KB: one long header,
// and many short ones.
func (a *abuse) hugeHeaders(t *testing.T, f *figures) {
	shapes := []string{
		"GET /smuggled-big HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n",
		"GET /smuggled-big HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: 0123456789abcdef0123456789abcdef0123456789\r\n", 2000) + "\r\n",
	}
	const each = 50
	ends := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 2 * each {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := rawExchange(a.in.addr, shapes[i%2], false, 10*time.Second)
			mu.Lock()
			ends[ex.ended()]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	f.add("%d requests (one 100 KB header, or 2000 short ones): %s", 2*each, countsText(ends))
	if ends["431"] != 2*each {
		t.Errorf("100 KB headers answered %s, want 431 for every one", countsText(ends))
	}
	a.noneSeen(t)
}

// smuggle is one malformed request.
type smuggle struct {
	name      string
	raw       string
	halfClose bool // end the client's side after raw
	// mayBegin: a worker may see the request begin, never end. It is set
	// for chunked bodies that break after their first chunk, which percore
	// has begun to stream (docs/proxy.md promises a refusal before any worker
	// only for a bad first chunk).
	mayBegin bool
	status   int // the answer expected; 0: any refusal, or a closed connection
}

var smuggles = []smuggle{
	{name: "CL.TE", raw: "POST /smuggled-clte HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-inner HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
	{name: "TE.CL", raw: "POST /smuggled-tecl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", status: 400},
	{name: "TE.TE (second TE header)", raw: "POST /smuggled-tete HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "TE xchunked", raw: "POST /smuggled-xchunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello", status: 400},
	{name: "TE chunked, identity", raw: "POST /smuggled-identity HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "space before the colon", raw: "POST /smuggled-space HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", status: 400},
	{name: "obs-fold TE", raw: "POST /smuggled-fold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "two Content-Lengths", raw: "POST /smuggled-twocl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello", status: 400},
	{name: "signed Content-Length", raw: "POST /smuggled-sign HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", status: 400},
	{name: "bare LF in the header", raw: "POST /smuggled-lf HTTP/1.1\r\nHost: x\nContent-Length: 5\r\n\r\nhello", status: 400},
	{name: "bare CR in the header", raw: "GET /smuggled-cr HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n", status: 400},
	{name: "TE in HTTP/1.0", raw: "POST /smuggled-http10 HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "bad chunk size", raw: "POST /smuggled-zz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk size overflow", raw: "POST /smuggled-overflow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "negative chunk size", raw: "POST /smuggled-negative HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", status: 400},
	{name: "chunk longer than its size", raw: "POST /smuggled-long HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloEXTRA\r\n0\r\n\r\n", status: 400},
	{name: "chunk size line ending in bare LF", raw: "POST /smuggled-chunklf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n", status: 400},
	{name: "bad second chunk", raw: "POST /smuggled-second HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n", status: 400, mayBegin: true},
	{name: "no last chunk, then EOF", raw: "POST /smuggled-nolast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", halfClose: true, mayBegin: true},
	{name: "malformed trailer", raw: "POST /smuggled-trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nno colon here\r\n\r\n", status: 400, mayBegin: true},
}

// smuggling sends each malformed shape 5 times, and a well-formed chunked
// request as the control: the worker must see the control whole, and no
// malformed request whole (most not at all).
func (a *abuse) smuggling(t *testing.T, f *figures) {
	const times = 5
	answers := map[string]int{}
	for _, s := range smuggles {
		for range times {
			ex := rawExchange(a.in.addr, s.raw, s.halfClose, 5*time.Second)
			answers[ex.ended()]++
			if ex.answers > 1 || (s.status != 0 && ex.status != s.status) || ex.status/100 == 2 || isTimeout(ex.err) {
				t.Errorf("%s: answered %q (%d answers); want %d and the connection closed", s.name, ex.ended(), ex.answers, s.status)
			}
		}
	}
	control := rawExchange(a.in.addr, "POST /smuggled-control HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, 5*time.Second)
	if control.status != 200 {
		t.Errorf("the well-formed chunked control request got %q", control.ended())
	}
	time.Sleep(500 * time.Millisecond) // the workers' lines arrive
	var begun, whole []string
	controlSeen := false
	for _, line := range a.in.appLinesWith("chaos-saw") {
		path := line[strings.LastIndexByte(line, ' ')+1:]
		if path == "/smuggled-control" {
			controlSeen = controlSeen || strings.HasPrefix(line, "chaos-saw-end")
			continue
		}
		allowed := slices.ContainsFunc(smuggles, func(s smuggle) bool { return s.mayBegin && strings.Contains(s.raw, " "+path+" ") })
		switch {
		case strings.HasPrefix(line, "chaos-saw-end"):
			whole = append(whole, path)
		case !allowed:
			whole = append(whole, path+" (begun)")
		default:
			begun = append(begun, path)
		}
	}
	clientErrors := len(a.in.appLinesWith("chaos-client-error"))
	f.add("%d shapes × %d: %s; worker saw none whole, %d begun (a body broken after its first chunk: %s), node counted %d aborted requests",
		len(smuggles), times, countsText(answers), len(begun), strings.Join(uniq(begun), " "), clientErrors)
	if !controlSeen {
		t.Error("the worker did not see the well-formed control request: the check cannot see anything")
	}
	if len(whole) > 0 {
		t.Errorf("a worker saw malformed requests: %q", whole)
	}
}

// comesBackDown lets the normal traffic flow on after the attacks and
// checks that percore gives back at least half of the resident memory the
// attacks made it grow by.
func (a *abuse) comesBackDown(t *testing.T) {
	f := book.row(t, "6f", "after the attacks, normal traffic only: percore's RSS comes back down")
	window := 45 * time.Second
	if testing.Short() {
		window = 20 * time.Second
	}
	peak := a.smp.peak(a.before.at)
	began := a.load.since(time.Now())
	start := a.smp.read()
	time.Sleep(window)
	end := a.smp.read()
	low := end
	for _, u := range a.smp.since(start.at) {
		if u.rss < low.rss {
			low = u
		}
	}
	normal := count(a.load.snapshot(), between(began, a.load.since(time.Now())))
	f.requests(normal)
	f.add("RSS %s before the attacks, peak %s during them, %s when they ended, %s after %s more of normal traffic (lowest %s); fds %d",
		mib(a.before.rss), mib(peak.rss), mib(start.rss), mib(end.rss), window, mib(low.rss), end.fds)
	if half := a.before.rss + (peak.rss-a.before.rss)/2; end.rss > half {
		t.Errorf("percore's RSS is %s %s after the attacks; it grew from %s to %s and must give back at least half (down to %s)",
			mib(end.rss), window, mib(a.before.rss), mib(peak.rss), mib(half))
	}
	if normal.failed() > 0 {
		t.Errorf("normal traffic: %d of %d requests failed: %s", normal.failed(), normal.sent, normal.reasonsText())
	}
}

// countsText writes counts as "431×98 reset×2", most frequent first.
func countsText(counts map[string]int) string {
	return tally{reasons: counts}.reasonsText()
}

func uniq(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
