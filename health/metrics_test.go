package health

import (
	"errors"
	"io"
	"net/http"
	"testing"
)

type fakeMetrics struct {
	out string
	err error
}

func (f fakeMetrics) WriteMetrics(w io.Writer) error {
	if _, err := io.WriteString(w, f.out); err != nil {
		return err
	}
	return f.err
}

func getMetrics(t *testing.T, m MetricsWriter) (*http.Response, string) {
	t.Helper()
	_, base := startServer(t, Config{Workers: &fakeWorkers{}, Metrics: m})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestMetricsServed(t *testing.T) {
	const out = "# TYPE up gauge\nup 1\n"
	resp, body := getMetrics(t, fakeMetrics{out: out})
	if resp.StatusCode != 200 || body != out {
		t.Errorf("/metrics = %d %q, want 200 %q", resp.StatusCode, body, out)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q, want the text format's", ct)
	}
}

func TestMetricsNotConfigured(t *testing.T) {
	if resp, _ := getMetrics(t, nil); resp.StatusCode != 404 {
		t.Errorf("/metrics without Metrics = %d, want 404", resp.StatusCode)
	}
}

func TestMetricsPartial(t *testing.T) {
	const out = "up 1\n"
	resp, body := getMetrics(t, fakeMetrics{out: out, err: errors.New("some metric unreadable")})
	if resp.StatusCode != 200 || body != out {
		t.Errorf("/metrics = %d %q, want 200 and what was written", resp.StatusCode, body)
	}
}

func TestMetricsFailed(t *testing.T) {
	if resp, _ := getMetrics(t, fakeMetrics{err: errors.New("nothing to write")}); resp.StatusCode != 500 {
		t.Errorf("/metrics with nothing written = %d, want 500", resp.StatusCode)
	}
}
