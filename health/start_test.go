package health

import (
	"strings"
	"sync/atomic"
	"testing"
)

// notReadyWorkers also says why some serving workers are not counted.
type notReadyWorkers struct {
	fakeWorkers
	lines []string
}

func (f *notReadyWorkers) NotReady() []string { return f.lines }

func TestReadyzWaitsOnceForTheFirstWorkers(t *testing.T) {
	w := &fakeWorkers{}
	var first atomic.Int64
	first.Store(2)
	_, base := startServer(t, Config{Workers: w, StartWorkers: func() int { return int(first.Load()) }})
	steps := []struct {
		ready   int64
		code    int
		verbose string
	}{
		{0, 503, "0 of the 1 workers needed are ready"},
		{1, 503, "starting: 1 of the 2 first workers are ready"},
		{2, 200, "2 workers ready"},
		{1, 200, "1 workers ready"}, // started: --ready-min alone from now on
		{0, 503, "0 of the 1 workers needed"},
	}
	for _, st := range steps {
		w.ready.Store(st.ready)
		if code, _ := get(t, base+"/readyz"); code != st.code {
			t.Errorf("ready=%d: /readyz = %d, want %d", st.ready, code, st.code)
		}
		if _, body := get(t, base+"/readyz?verbose"); !strings.Contains(body, st.verbose) {
			t.Errorf("ready=%d: verbose = %q, want %q", st.ready, body, st.verbose)
		}
	}
}

func TestReadyzWaitsForFewerFirstWorkersAfterAScaleDown(t *testing.T) {
	w := &fakeWorkers{}
	w.ready.Store(1)
	var first atomic.Int64
	first.Store(3)
	_, base := startServer(t, Config{Workers: w, StartWorkers: func() int { return int(first.Load()) }})
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("1 of 3 first workers: /readyz = %d, want 503", code)
	}
	first.Store(1)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("1 of 1 first workers: /readyz = %d, want 200", code)
	}
}

func TestReadyzVerboseNamesWorkersNotReady(t *testing.T) {
	w := &notReadyWorkers{lines: []string{"worker 1 not accepting: accept queue full: 511 of 511"}}
	w.ready.Store(1)
	_, base := startServer(t, Config{Workers: w, ReadyMin: 2})
	code, body := get(t, base+"/readyz?verbose")
	if code != 503 || !strings.Contains(body, "1 of the 2 workers needed are ready\nworker 1 not accepting: accept queue full: 511 of 511\n") {
		t.Errorf("/readyz?verbose = %d %q", code, body)
	}
	if _, body := get(t, base+"/readyz"); body != "not ready\n" {
		t.Errorf("/readyz = %q, want the short answer", body)
	}
}
