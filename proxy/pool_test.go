package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func newTestPool(keys ...uint64) *Pool {
	p := NewPool(UpstreamConfig{})
	for _, k := range keys {
		p.Add(k, int(k), "127.0.0.1:1")
	}
	return p
}

func TestPickPrefersLeastInFlight(t *testing.T) {
	p := newTestPool(1, 2, 3)
	var none triedSet
	held := map[uint64]int{}
	// Nine picks without release spread 3/3/3.
	for i := 0; i < 9; i++ {
		b := p.pick(&none)
		held[b.key]++
	}
	for k, n := range held {
		if n != 3 {
			t.Errorf("worker %d got %d of 9 concurrent requests, want 3 (%v)", k, n, held)
		}
	}
}

func TestPickAvoidsBusyWorker(t *testing.T) {
	p := newTestPool(1, 2)
	var none triedSet
	busy := p.pick(&none)
	for i := 0; i < 10; i++ {
		b := p.pick(&none)
		if b == busy {
			t.Fatalf("pick %d chose the busy worker %d while the other was idle", i, b.key)
		}
		b.release()
	}
}

func TestPickRotatesAmongIdleWorkers(t *testing.T) {
	p := newTestPool(1, 2, 3)
	var none triedSet
	seen := map[uint64]int{}
	for i := 0; i < 30; i++ {
		b := p.pick(&none)
		seen[b.key]++
		b.release()
	}
	if len(seen) != 3 {
		t.Errorf("sequential requests went to %v, want all 3 workers", seen)
	}
}

func TestPickSkipsTried(t *testing.T) {
	p := newTestPool(1, 2)
	var tried triedSet
	tried.add(1)
	for i := 0; i < 5; i++ {
		b := p.pick(&tried)
		if b == nil || b.key != 2 {
			t.Fatalf("pick = %v, want worker 2", b)
		}
		b.release()
	}
	tried.add(2)
	if b := p.pick(&tried); b != nil {
		t.Errorf("pick = %d with every worker tried, want nil", b.key)
	}
}

func TestDrainWaitsForInFlight(t *testing.T) {
	p := newTestPool(1)
	var none triedSet
	b := p.pick(&none)
	drained := p.Drain(1)
	if p.Ready() != 0 {
		t.Errorf("Ready = %d after drain, want 0", p.Ready())
	}
	if got := p.pick(&none); got != nil {
		t.Errorf("a draining worker was picked")
	}
	select {
	case <-drained:
		t.Fatal("drained before the in-flight request ended")
	default:
	}
	b.release()
	select {
	case <-drained:
	case <-time.After(time.Second):
		t.Fatal("not drained after the last request ended")
	}
	select {
	case <-p.Drain(42):
	default:
		t.Error("Drain of an unknown key must return a closed channel")
	}
}

func TestAcquireWaitsForAWorker(t *testing.T) {
	p := newTestPool()
	var none triedSet
	go func() {
		time.Sleep(50 * time.Millisecond)
		p.Add(7, 0, "127.0.0.1:1")
	}()
	var deadline time.Time
	b, err := p.acquire(&none, nil, &deadline, 5*time.Second)
	if b == nil || b.key != 7 || err != nil {
		t.Fatalf("acquire = %v, %v; want the added worker", b, err)
	}
	b.release()
	// A retry whose worker is still routed (it answered badly) gives up at
	// once: waiting would only delay the 502.
	tried := triedSet{keys: [maxAttempts]uint64{7}, n: 1}
	deadline = time.Time{}
	start := time.Now()
	if b, err := p.acquire(&tried, nil, &deadline, time.Second); b != nil || err != ErrNoWorker {
		t.Errorf("acquire = %v, %v; want ErrNoWorker", b, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("acquire waited %s for a retry whose worker is still routed", d)
	}
	// A retry whose worker left the pool (it died) waits for a replacement.
	p.Drain(7)
	deadline = time.Time{}
	start = time.Now()
	if b, err := p.acquire(&tried, nil, &deadline, 50*time.Millisecond); b != nil || err != ErrNoWorker {
		t.Errorf("acquire = %v, %v; want ErrNoWorker at the deadline", b, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("acquire gave up after %s, want about 50ms", d)
	}
}

// TestDownWorkerIsOutAndItsRequestsWait marks a worker down as the handler
// does when its loopback port refuses connections: it leaves rotation at
// once, OnEject hears of it, it is no spare, and a retry that failed on it
// waits for a replacement instead of giving up.
func TestDownWorkerIsOutAndItsRequestsWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live := ln.Addr().String()
	defer ln.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := dead.Addr().String()
	dead.Close()

	p := NewPool(UpstreamConfig{})
	p.Add(1, 0, live)
	p.Add(2, 1, gone)
	ejections := make(chan uint64, 4)
	p.OnEject(func(key uint64, until time.Time) { ejections <- key })
	list := *p.backends.Load()
	if p.notice(list[0], fasthttp.ErrConnectionClosed, true) {
		t.Error("a worker whose port still accepts connections was marked down")
	}
	if p.notice(list[1], fasthttp.ErrTimeout, true) {
		t.Error("a timeout marked a worker down without a look at its port")
	}
	if p.notice(list[1], io.EOF, false) {
		t.Error("a lost connection marked a worker down without a probe")
	}
	if !p.notice(list[1], io.EOF, true) {
		t.Fatal("a worker whose port refuses connections was not marked down")
	}
	if p.notice(list[1], &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false); len(ejections) != 1 || <-ejections != 2 {
		t.Errorf("OnEject was not told once of the down worker")
	}
	if p.Ready() != 1 {
		t.Errorf("Ready = %d with one worker down, want 1", p.Ready())
	}
	var none triedSet
	for i := 0; i < 4; i++ {
		if b := p.pick(&none); b == nil || b.key != 1 {
			t.Fatalf("pick = %v, want the live worker only", b)
		} else {
			b.release()
		}
	}
	// With the live worker gone too, the down one is no spare: a request
	// waits for a new worker, and so does a retry that failed on it.
	p.Drain(1)
	tried := triedSet{keys: [maxAttempts]uint64{2}, n: 1}
	for i, ts := range []triedSet{none, tried} {
		key := uint64(3 + i)
		go func() {
			time.Sleep(50 * time.Millisecond)
			p.Add(key, 1, live)
		}()
		var deadline time.Time
		b, err := p.acquire(&ts, nil, &deadline, 5*time.Second)
		if b == nil || b.key != key || err != nil {
			t.Fatalf("acquire (tried %v) = %v, %v; want the new worker", ts.keys[:ts.n], b, err)
		}
		b.release()
		p.Drain(key)
	}
}

func TestLocal(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:3000": true,
		"[::1]:3000":     true,
		"/tmp/w/0.sock":  true,
		"10.0.0.1:3000":  false,
		"example.com:80": false,
		"no port":        false,
		"127.0.0.1":      false,
	} {
		if got := local(addr); got != want {
			t.Errorf("local(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNRESET)}, true}, // the listener closed mid-handshake
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENOENT)}, true},     // a Unix socket's file is gone
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EMFILE)}, false},    // percore's own shortage
		{fasthttp.ErrDialTimeout, false},
	} {
		if got := refused(c.err); got != c.want {
			t.Errorf("refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
