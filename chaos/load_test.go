//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outcome is how one request ended, as a client sees it.
type outcome uint8

const (
	// outOK is a complete 2xx answer.
	outOK outcome = iota
	// outHTTP is a complete answer with another status (record.code).
	outHTTP
	// outRefused is a connection refused: nothing was accepted.
	outRefused
	// outDialFailed is any other failure to connect.
	outDialFailed
	// outClosedIdle is a reused keep-alive connection that closed or reset
	// before any byte of the answer: the server closed it as the request
	// went out, the race RFC 9112 section 9.3.1 lets clients retry.
	outClosedIdle
	// outClosed is a new connection that closed before any byte of the
	// answer.
	outClosed
	// outReset is a new connection reset before any byte of the answer.
	outReset
	// outTruncated is an answer that began but did not complete (or did not
	// parse).
	outTruncated
	// outTimeout is no complete answer within the client's timeout.
	outTimeout
)

func (o outcome) String() string {
	switch o {
	case outOK:
		return "ok"
	case outHTTP:
		return "http"
	case outRefused:
		return "refused"
	case outDialFailed:
		return "dial-failed"
	case outClosedIdle:
		return "closed-idle"
	case outClosed:
		return "closed"
	case outReset:
		return "reset"
	case outTruncated:
		return "truncated"
	case outTimeout:
		return "timeout"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// request is one request a client sends.
type request struct {
	method string
	path   string
	body   []byte
}

// stream is a group of keep-alive clients that send the same kind of
// request, one at a time each.
type stream struct {
	name    string
	clients int
	req     func(n int) request // the n-th request of a client
	pace    time.Duration       // pause between a client's requests (0: none)
	stagger time.Duration       // client c starts c×stagger after the load (0: all at once)
	timeout time.Duration       // per request (default 15s)
	fresh   bool                // a new connection for every request
}

// record is one request's fate.
type record struct {
	stream  uint8
	out     outcome
	code    int16
	reused  bool          // sent on a keep-alive connection that served before
	rst     bool          // the failure was a connection reset (ECONNRESET, EPIPE)
	pid     int32         // the worker that answered, when the body names it
	start   time.Duration // since the load began
	latency time.Duration
}

func (r record) label() string {
	if r.out == outHTTP {
		return strconv.Itoa(int(r.code))
	}
	return r.out.String()
}

func (r record) end() time.Duration { return r.start + r.latency }

// Bounds of every load, whatever the scenario asks.
const (
	loadMaxDuration = 3 * time.Minute
	loadMaxRequests = 400_000 // per client
)

// load is a running client load. Stop it to get its records.
type load struct {
	addr    string
	began   time.Time
	stopCh  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	clients []*client
}

// startLoad starts the streams against addr; the test's cleanup stops them.
func startLoad(t *testing.T, addr string, streams ...stream) *load {
	l := &load{addr: addr, began: time.Now(), stopCh: make(chan struct{})}
	for i, s := range streams {
		if s.timeout == 0 {
			streams[i].timeout = 15 * time.Second
		}
		for c := 0; c < s.clients; c++ {
			cl := &client{l: l, s: &streams[i], idx: uint8(i), delay: time.Duration(c) * s.stagger}
			l.clients = append(l.clients, cl)
			l.wg.Add(1)
			go cl.run()
		}
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// since is the load's clock: time since it began.
func (l *load) since(t time.Time) time.Duration { return t.Sub(l.began) }

// stop stops the clients, waits for their last requests and returns every
// record. It may be called more than once.
func (l *load) stop() []record {
	l.once.Do(func() { close(l.stopCh) })
	l.wg.Wait()
	return l.snapshot()
}

// snapshot returns the records so far.
func (l *load) snapshot() []record {
	var all []record
	for _, c := range l.clients {
		c.mu.Lock()
		all = append(all, c.recs...)
		c.mu.Unlock()
	}
	return all
}

// between keeps the records of requests sent in [from, to) of the load's clock.
func between(from, to time.Duration) func(record) bool {
	return func(r record) bool { return r.start >= from && r.start < to }
}

// client is one keep-alive connection's worth of load.
type client struct {
	l      *load
	s      *stream
	idx    uint8
	delay  time.Duration // before the first request
	conn   net.Conn
	cr     *countingReader
	br     *bufio.Reader
	served int        // requests answered on conn
	mu     sync.Mutex // protects recs
	recs   []record
	wbuf   bytes.Buffer
	head   headWriter
}

func (c *client) run() {
	defer c.l.wg.Done()
	defer c.close()
	if c.delay > 0 {
		select {
		case <-c.l.stopCh:
			return
		case <-time.After(c.delay):
		}
	}
	deadline := c.l.began.Add(loadMaxDuration)
	for n := 0; n < loadMaxRequests && time.Now().Before(deadline); n++ {
		select {
		case <-c.l.stopCh:
			return
		default:
		}
		rec := c.do(c.s.req(n))
		if c.s.fresh {
			c.close()
		}
		c.mu.Lock()
		c.recs = append(c.recs, rec)
		c.mu.Unlock()
		if rec.out == outRefused || rec.out == outDialFailed {
			// As a real client would, wait a little before dialling again.
			select {
			case <-c.l.stopCh:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		if c.s.pace > 0 {
			select {
			case <-c.l.stopCh:
				return
			case <-time.After(c.s.pace):
			}
		}
	}
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.served = nil, 0
	}
}

// do sends one request and classifies what came back.
func (c *client) do(req request) record {
	start := time.Now()
	rec := record{stream: c.idx, start: c.l.since(start)}
	var err error
	finish := func(o outcome) record {
		rec.out, rec.latency = o, time.Since(start)
		rec.rst = errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		if o != outOK && o != outHTTP {
			c.close()
		}
		return rec
	}
	deadline := start.Add(c.s.timeout)
	if c.conn == nil {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", c.l.addr, c.s.timeout)
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				return finish(outRefused)
			case isTimeout(err):
				return finish(outTimeout)
			}
			return finish(outDialFailed)
		}
		c.conn = conn
		c.cr = &countingReader{r: conn}
		c.br = bufio.NewReaderSize(c.cr, 16<<10)
	}
	rec.reused = c.served > 0
	_ = c.conn.SetDeadline(deadline) // a closed connection shows on the write
	c.wbuf.Reset()
	fmt.Fprintf(&c.wbuf, "%s %s HTTP/1.1\r\nHost: chaos.test\r\nUser-Agent: percore-chaos\r\n", req.method, req.path)
	if req.body != nil || req.method == "POST" || req.method == "PUT" {
		fmt.Fprintf(&c.wbuf, "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", len(req.body))
	}
	c.wbuf.WriteString("\r\n")
	c.wbuf.Write(req.body)
	c.cr.n = 0
	if _, err = c.conn.Write(c.wbuf.Bytes()); err != nil {
		return finish(c.beforeAnswer(err, rec.reused))
	}
	var resp *http.Response
	resp, err = http.ReadResponse(c.br, nil)
	if err != nil {
		if c.cr.n == 0 {
			return finish(c.beforeAnswer(err, rec.reused))
		}
		if isTimeout(err) {
			return finish(outTimeout)
		}
		return finish(outTruncated)
	}
	c.head.b = c.head.b[:0]
	_, err = io.Copy(&c.head, resp.Body) // nil at the body's end; io.ErrUnexpectedEOF when cut
	resp.Body.Close()
	if err != nil {
		if isTimeout(err) {
			return finish(outTimeout)
		}
		return finish(outTruncated)
	}
	rec.code = int16(resp.StatusCode)
	rec.pid = int32(pidIn(c.head.b))
	c.served++
	if resp.Close {
		c.close()
	}
	if resp.StatusCode/100 == 2 {
		return finish(outOK)
	}
	return finish(outHTTP)
}

// beforeAnswer classifies a failure before any byte of the answer.
func (c *client) beforeAnswer(err error, reused bool) outcome {
	switch {
	case isTimeout(err):
		return outTimeout
	case reused:
		return outClosedIdle
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return outReset
	}
	return outClosed
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// headWriter keeps the first bytes written to it and drops the rest.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := 512 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// countingReader counts the bytes read through it since n was last reset.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// pidIn finds "pid":N in a JSON body; 0 when there is none.
func pidIn(body []byte) int {
	i := bytes.Index(body, []byte(`"pid":`))
	if i < 0 {
		return 0
	}
	n := 0
	for _, b := range body[i+6:] {
		if b < '0' || b > '9' {
			break
		}
		n = n*10 + int(b-'0')
	}
	return n
}

// tally is what a set of records adds up to.
type tally struct {
	sent, ok int
	reasons  map[string]int // failed requests by label
}

func (t tally) failed() int { return t.sent - t.ok }

// count adds up the records that keep says to keep (nil: all).
func count(recs []record, keep func(record) bool) tally {
	return countBy(recs, keep, record.label)
}

// countBy is count with the failures keyed by reason.
func countBy(recs []record, keep func(record) bool, reason func(record) string) tally {
	t := tally{reasons: map[string]int{}}
	for _, r := range recs {
		if keep != nil && !keep(r) {
			continue
		}
		t.sent++
		if r.out == outOK {
			t.ok++
		} else {
			t.reasons[reason(r)]++
		}
	}
	return t
}

// reasonsText writes failures by reason, most frequent first: "502×3 timeout×1".
func (t tally) reasonsText() string {
	if len(t.reasons) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(t.reasons))
	for k := range t.reasons {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := t.reasons[b] - t.reasons[a]; d != 0 {
			return d
		}
		if a < b {
			return -1
		}
		return 1
	})
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s×%d", k, t.reasons[k])
	}
	return b.String()
}

// inStream keeps the records of stream i.
func inStream(i int) func(record) bool {
	return func(r record) bool { return int(r.stream) == i }
}

// latencies returns the sorted latencies of the kept records.
func latencies(recs []record, keep func(record) bool) []time.Duration {
	var ds []time.Duration
	for _, r := range recs {
		if keep == nil || keep(r) {
			ds = append(ds, r.latency)
		}
	}
	slices.Sort(ds)
	return ds
}

// percentile returns the p-th percentile (0..100) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// maxLatency returns the longest latency of the kept records.
func maxLatency(recs []record, keep func(record) bool) time.Duration {
	var m time.Duration
	for _, r := range recs {
		if (keep == nil || keep(r)) && r.latency > m {
			m = r.latency
		}
	}
	return m
}

// Request makers.

func get(path string) func(int) request {
	return func(int) request { return request{method: "GET", path: path} }
}

func post(path string, size int) func(int) request {
	body := bytes.Repeat([]byte("p"), size)
	return func(int) request { return request{method: "POST", path: path, body: body} }
}

// once sends one request on a new connection and classifies what came
// back as a load client would.
func once(addr string, req request, timeout time.Duration) record {
	l := &load{addr: addr, began: time.Now(), stopCh: make(chan struct{})}
	c := &client{l: l, s: &stream{timeout: timeout}}
	defer c.close()
	return c.do(req)
}
