package health

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeWorkers struct{ ready atomic.Int64 }

func (f *fakeWorkers) ReadyWorkers() int { return int(f.ready.Load()) }

func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	t.Cleanup(func() {
		s.Stop()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("admin server did not stop")
		}
	})
	return s, "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyz(t *testing.T) {
	w := &fakeWorkers{}
	s, base := startServer(t, Config{Workers: w, ReadyMin: 2})
	steps := []struct {
		ready    int64
		shutdown bool
		code     int
		verbose  string
	}{
		{0, false, 503, "0 of the 2 workers needed are ready"},
		{1, false, 503, "1 of the 2"},
		{2, false, 200, "2 workers ready"},
		{2, true, 503, "shutting down"},
	}
	for _, st := range steps {
		w.ready.Store(st.ready)
		if st.shutdown {
			s.MarkShuttingDown()
		}
		if code, _ := get(t, base+"/readyz"); code != st.code {
			t.Errorf("ready=%d shutdown=%v: /readyz = %d, want %d", st.ready, st.shutdown, code, st.code)
		}
		if _, body := get(t, base+"/readyz?verbose"); !strings.Contains(body, st.verbose) {
			t.Errorf("verbose = %q, want %q", body, st.verbose)
		}
		for _, p := range []string{"/healthz", "/livez"} {
			if code, _ := get(t, base+p); code != 200 {
				t.Errorf("%s = %d, want 200 whatever the workers", p, code)
			}
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}
