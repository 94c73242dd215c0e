package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadCountsWorkersWithRequests(t *testing.T) {
	p := newTestPool(1, 2, 3)
	if got := p.Load(); got != (Load{Ready: 3}) {
		t.Fatalf("idle pool: %+v, want 3 ready, none busy", got)
	}
	var none triedSet
	a := p.pick(&none)
	b := p.pick(&none)
	extra := p.pick(&none)
	extra2 := p.pick(&none) // 4 requests on 3 workers: one has two
	if got := p.Load(); got != (Load{Ready: 3, Busy: 3, Inflight: 4}) {
		t.Errorf("4 requests on 3 workers: %+v, want 3 busy, 4 in flight", got)
	}
	for _, r := range []*backend{extra, extra2, b} {
		r.release()
	}
	if got := p.Load(); got.Busy != 1 || got.Inflight != 1 || a.inflight.Load() != 1 {
		t.Errorf("one request left: %+v, want 1 busy, 1 in flight", got)
	}
	a.release()
	if got := p.Load(); got.Busy != 0 {
		t.Errorf("no request left: %+v, want none busy", got)
	}
}

func TestLoadLeavesOutDrainingAndEjectedWorkers(t *testing.T) {
	p := newTestPool(1, 2, 3)
	var none triedSet
	held := []*backend{p.pick(&none), p.pick(&none), p.pick(&none)}
	p.Drain(held[0].key)
	for i := 0; i < EjectAfter; i++ {
		p.failed(held[1])
	}
	if got := p.Load(); got != (Load{Ready: 1, Busy: 1, Inflight: 1}) {
		t.Errorf("one worker draining, one ejected, all three busy: %+v, want 1 ready and busy", got)
	}
	for _, b := range held {
		b.release()
	}
}

func TestLoadCountsQueuedRequests(t *testing.T) {
	p := newLimitedPool(1, 5, 10*time.Second, 1)
	first, err := acquireNow(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *backend, 2)
	for range 2 {
		go func() {
			b, _ := acquireNow(p)
			got <- b
		}()
	}
	waitFor(t, 10*time.Second, "two requests queued", func() bool { return p.Load().Queued == 2 })
	if l := p.Load(); l.Ready != 1 || l.Busy != 1 || l.Inflight != 1 {
		t.Errorf("one worker at its limit: %+v, want 1 ready and busy with 1 in flight", l)
	}
	first.release()
	(<-got).release()
	(<-got).release()
	if l := p.Load(); l != (Load{Ready: 1}) {
		t.Errorf("after the queue emptied: %+v, want 1 ready, none busy or queued", l)
	}
}

// A worker whose only in-flight work is an open WebSocket is not busy, and
// becomes busy when a request comes on top.
func TestLoadOpenTunnelIsNotBusy(t *testing.T) {
	w := startUpgradeWorker(t, switching("websocket"))
	p := startProxy(t, Config{}, ServerConfig{}, w.addr())
	c, br, head := dialTunnel(t, p.addr, wsRequest)
	if !strings.HasPrefix(head, "HTTP/1.1 101") {
		t.Fatalf("head %q", head)
	}
	b := (*p.pool.backends.Load())[0]
	waitFor(t, 5*time.Second, "the tunnel counted", func() bool { return b.tunnels.Load() == 1 })
	if b.inflight.Load() != 1 {
		t.Fatalf("in flight with a tunnel open: %d, want 1", b.inflight.Load())
	}
	if l := p.pool.Load(); l != (Load{Ready: 1}) {
		t.Errorf("a worker with only a tunnel open: %+v, want 1 ready, none busy", l)
	}
	b.inflight.Add(1) // a request beside the tunnel
	if l := p.pool.Load(); l.Busy != 1 || l.Inflight != 1 {
		t.Errorf("a worker with a tunnel and a request: %+v, want busy", l)
	}
	b.inflight.Add(-1)
	c.CloseWrite()
	io.ReadAll(br)
	waitFor(t, 5*time.Second, "the tunnel given back", func() bool { return b.inflight.Load() == 0 })
	if n := b.tunnels.Load(); n != 0 {
		t.Errorf("tunnels after the tunnel ended: %d, want 0", n)
	}
}

// A request held by a real worker makes it busy until the answer is sent.
func TestLoadBusyWhileWorkerAnswers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
	var addrs []string
	for range 2 {
		s := httptest.NewServer(handler)
		defer s.Close()
		addrs = append(addrs, strings.TrimPrefix(s.URL, "http://"))
	}
	p := startProxy(t, Config{}, ServerConfig{}, addrs...)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + p.addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach a worker")
	}
	if l := p.pool.Load(); l != (Load{Ready: 2, Busy: 1, Inflight: 1}) {
		t.Errorf("one of two workers answering: %+v, want 2 ready, 1 busy", l)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the worker idle", func() bool { return p.pool.Load().Busy == 0 })
}
