package process_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/percore/percore/promtext"
	"github.com/percore/percore/promtext/process"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, namespace string) map[string]*dto.MetricFamily {
	t.Helper()
	var s promtext.Set
	if err := process.Add(&s, namespace); err != nil {
		t.Fatalf("Add: %v", err)
	}
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b.String())
	}
	return families
}

func value(mf *dto.MetricFamily) float64 {
	m := mf.GetMetric()[0]
	if mf.GetType() == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestAdd(t *testing.T) {
	families := scrape(t, "test")
	want := map[string]dto.MetricType{
		"test_process_max_fds":                  dto.MetricType_GAUGE,
		"test_process_virtual_memory_max_bytes": dto.MetricType_GAUGE,
	}
	if runtime.GOOS == "linux" {
		want["test_process_cpu_seconds_total"] = dto.MetricType_COUNTER
		want["test_process_open_fds"] = dto.MetricType_GAUGE
		want["test_process_virtual_memory_bytes"] = dto.MetricType_GAUGE
		want["test_process_resident_memory_bytes"] = dto.MetricType_GAUGE
		want["test_process_start_time_seconds"] = dto.MetricType_GAUGE
	}
	for name, typ := range want {
		mf := families[name]
		if mf == nil {
			t.Errorf("no %s", name)
			continue
		}
		if mf.GetType() != typ || mf.GetHelp() == "" {
			t.Errorf("%s: type %v help %q, want %v with a help text", name, mf.GetType(), mf.GetHelp(), typ)
		}
	}
	if len(families) != len(want) {
		t.Errorf("%d families, want %d", len(families), len(want))
	}
	if runtime.GOOS != "linux" {
		return
	}
	checkLinuxValues(t, families)
}

func checkLinuxValues(t *testing.T, f map[string]*dto.MetricFamily) {
	t.Helper()
	start := time.Unix(0, int64(value(f["test_process_start_time_seconds"])*1e9))
	if age := time.Since(start); age < -2*time.Second || age > time.Hour {
		t.Errorf("start time %v is %v ago; the test process started just now", start, age)
	}
	if rss, vsz := value(f["test_process_resident_memory_bytes"]), value(f["test_process_virtual_memory_bytes"]); rss < 1<<20 || vsz < rss {
		t.Errorf("resident %v, virtual %v bytes: want at least 1 MiB resident, and no more than virtual", rss, vsz)
	}
	if fds := value(f["test_process_open_fds"]); fds < 3 {
		t.Errorf("%v open fds, want at least 3", fds)
	}
	if cpu := value(f["test_process_cpu_seconds_total"]); cpu < 0 {
		t.Errorf("cpu seconds %v < 0", cpu)
	}
}

func TestAddWithoutNamespace(t *testing.T) {
	if scrape(t, "")["process_max_fds"] == nil {
		t.Error("no process_max_fds with an empty namespace")
	}
}
