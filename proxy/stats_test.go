package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestCountsByWorkerAndClass(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
	}))
	defer ok.Close()
	p := startProxy(t, Config{}, ServerConfig{}, ok.Listener.Addr().String())
	for _, path := range []string{"/", "/", "/missing"} {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rawRoundTrip(t, p.addr, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	counts := map[int][5]uint64{}
	for _, c := range p.pool.Counts() {
		counts[c.Slot] = c.Codes
	}
	if counts[0][1] != 2 || counts[0][3] != 1 {
		t.Errorf("worker 0 counts = %v, want 2×2xx and 1×4xx", counts[0])
	}
	if counts[-1][3] != 1 {
		t.Errorf("percore's own answers = %v, want the refused request as 4xx", counts[-1])
	}
	h := p.pool.Durations()
	if h.Count != 4 || h.Buckets[len(h.Buckets)-1] != 4 || h.Sum <= 0 {
		t.Errorf("histogram = %+v", h)
	}
}

// A request in an HTTP version percore refuses gets 505, as RFC 9110
// section 15.6.6 has it, but the fault is the client's: it counts with the
// 4xx answers, never as a server error.
func TestRefusedHTTPVersionCountsAsClientError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p := startProxy(t, Config{}, ServerConfig{}, srv.Listener.Addr().String())
	for _, version := range []string{"HTTP/1.2", "HTTP/2.0", "HTTP/1.7"} {
		resp, _ := rawRoundTrip(t, p.addr, "GET / "+version+"\r\nHost: x\r\n\r\n")
		if resp.StatusCode != http.StatusHTTPVersionNotSupported {
			t.Errorf("GET / %s: status %d, want 505", version, resp.StatusCode)
		}
	}
	for _, c := range p.pool.Counts() {
		want := [codeClasses]uint64{}
		if c.Slot == -1 {
			want[3] = 3
		}
		if c.Codes != want {
			t.Errorf("slot %d counts %v, want %v: the refused versions as 4xx, no 5xx", c.Slot, c.Codes, want)
		}
	}
}

func TestFailingWorkerIsEjectedForAWhile(t *testing.T) {
	var good atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { good.Add(1) }))
	defer ok.Close()
	// A worker that accepts and closes at once: every request to it fails
	// at the proxy (POST is not retried elsewhere).
	closer := startRawServer(t, func(c net.Conn) { c.Close() })
	p := startProxy(t, Config{}, ServerConfig{}, closer.addr(), ok.Listener.Addr().String())
	ejections := make(chan time.Time, 10)
	p.pool.OnEject(func(key uint64, until time.Time) { ejections <- until })
	bad := 0
	for i := 0; i < 40; i++ {
		resp, err := http.Post("http://"+p.addr+"/", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 502 {
			bad++
		}
		resp.Body.Close()
	}
	if bad != EjectAfter {
		t.Errorf("%d requests failed on the broken worker, want %d before it is ejected", bad, EjectAfter)
	}
	if p.pool.Ready() != 1 {
		t.Errorf("Ready = %d with one worker ejected, want 1", p.pool.Ready())
	}
	if len(ejections) != 1 {
		t.Fatalf("OnEject was told of %d ejections, want 1", len(ejections))
	}
	if until := <-ejections; time.Until(until) < EjectBase/2 {
		t.Errorf("the ejection ends at %s, want about %s from now", until, EjectBase)
	}
}

func TestMaxRequestsAsksForRecycleOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	calls := make(chan uint64, 10)
	p := startProxy(t, Config{MaxRequests: 5, OnMaxRequests: func(k uint64) { calls <- k }}, ServerConfig{},
		srv.Listener.Addr().String())
	for i := 0; i < 12; i++ {
		resp, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	select {
	case k := <-calls:
		if k != 1 {
			t.Errorf("recycle asked for key %d, want 1", k)
		}
	case <-time.After(time.Second):
		t.Fatal("no recycle asked after 5 requests")
	}
	if len(calls) != 0 {
		t.Errorf("recycle asked %d more times, want once", len(calls))
	}
	if n := requestLimit(100, 10); n < 100 || n > 110 {
		t.Errorf("requestLimit(100, 10) = %d", n)
	}
}

// BenchmarkStatsRecord is what the metrics cost each request.
func BenchmarkStatsRecord(b *testing.B) {
	s := newStats()
	st := s.forSlot(0)
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.record(st, 200, time.Since(start))
		}
	})
}
