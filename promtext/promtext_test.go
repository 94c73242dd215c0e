package promtext_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/percore/percore/promtext"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// write writes s and fails the test on an error.
func write(t *testing.T, s *promtext.Set) string {
	t.Helper()
	var b bytes.Buffer
	n, err := s.WriteTo(&b)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(b.Len()) {
		t.Errorf("WriteTo returned %d bytes, wrote %d", n, b.Len())
	}
	return b.String()
}

// parse parses text as Prometheus does.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, text)
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestWriteExact(t *testing.T) {
	var s promtext.Set
	g := s.Gauge("b_gauge", "A gauge.", "worker")
	g.Add(2, "1")
	g.Add(1.5, "0")
	s.Counter("a_total", "A counter.").Add(3)
	s.Gauge("c_empty", "Left out: no samples.")
	const want = `# HELP a_total A counter.
# TYPE a_total counter
a_total 3
# HELP b_gauge A gauge.
# TYPE b_gauge gauge
b_gauge{worker="0"} 1.5
b_gauge{worker="1"} 2
`
	if got := write(t, &s); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	build := func(reverse bool) *promtext.Set {
		var s promtext.Set
		names := []string{"x_total", "m_total", "a_total"}
		values := []string{"b", "c", "a", "10", "2"}
		if reverse {
			names = []string{"a_total", "m_total", "x_total"}
			values = []string{"2", "10", "a", "c", "b"}
		}
		for _, n := range names {
			f := s.Counter(n, "Help.", "k", "v")
			for _, v := range values {
				f.Add(1, "same", v)
			}
		}
		return &s
	}
	if a, b := write(t, build(false)), write(t, build(true)); a != b {
		t.Errorf("order of adding changed the output:\n%s\n---\n%s", a, b)
	}
}

func TestEscaping(t *testing.T) {
	var s promtext.Set
	const help = "Help with a backslash \\, a line feed \n and \"quotes\"."
	values := []string{`back\slash`, `double "quote"`, "line\nfeed", `all \" three` + "\n", "plain"}
	f := s.Gauge("escaped", help, "v")
	for i, v := range values {
		f.Add(float64(i), v)
	}
	text := write(t, &s)
	if !strings.Contains(text, `# HELP escaped Help with a backslash \\, a line feed \n and "quotes".`+"\n") {
		t.Errorf("HELP line not escaped as the format wants:\n%s", text)
	}
	mf := parse(t, text)["escaped"]
	if mf.GetHelp() != help {
		t.Errorf("help parsed back as %q, want %q", mf.GetHelp(), help)
	}
	got := map[string]float64{}
	for _, m := range mf.GetMetric() {
		got[labels(m)["v"]] = m.GetGauge().GetValue()
	}
	for i, v := range values {
		if n, ok := got[v]; !ok || n != float64(i) {
			t.Errorf("label value %q parsed back as %v (found %v), want %d", v, n, ok, i)
		}
	}
}

func TestSpecialValues(t *testing.T) {
	var s promtext.Set
	f := s.Gauge("special", "Special values.", "v")
	cases := map[string]float64{
		"zero": 0, "negzero": math.Copysign(0, -1), "one": 1, "minusone": -1, "small": 1.5e-7,
		"big": 1.8446744073709552e+19, "pinf": math.Inf(+1), "ninf": math.Inf(-1), "nan": math.NaN(),
	}
	for name, v := range cases {
		f.Add(v, name)
	}
	text := write(t, &s)
	for _, line := range []string{`{v="zero"} 0`, `{v="negzero"} 0`, `{v="one"} 1`, `{v="minusone"} -1`,
		`{v="small"} 1.5e-07`, `{v="big"} 1.8446744073709552e+19`, `{v="pinf"} +Inf`, `{v="ninf"} -Inf`, `{v="nan"} NaN`} {
		if !strings.Contains(text, "special"+line+"\n") {
			t.Errorf("output lacks special%s:\n%s", line, text)
		}
	}
	for _, m := range parse(t, text)["special"].GetMetric() {
		name, got := labels(m)["v"], m.GetGauge().GetValue()
		want := cases[name]
		if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%s parsed back as %v, want %v", name, got, want)
		}
	}
}

func TestHistogram(t *testing.T) {
	var s promtext.Set
	bounds := []float64{0.005, 0.1, 1}
	h := s.Histogram("req_seconds", "Request durations.", bounds, "route")
	h.AddHistogram([]uint64{1, 3, 4}, 6, 12.5, "/b")
	h.AddHistogram([]uint64{0, 0, 0}, 0, 0, "/a")
	text := write(t, &s)
	const wantB = `req_seconds_bucket{route="/b",le="0.005"} 1
req_seconds_bucket{route="/b",le="0.1"} 3
req_seconds_bucket{route="/b",le="1"} 4
req_seconds_bucket{route="/b",le="+Inf"} 6
req_seconds_sum{route="/b"} 12.5
req_seconds_count{route="/b"} 6
`
	if !strings.HasSuffix(text, wantB) {
		t.Errorf("histogram lines:\n%s\nwant them to end with\n%s", text, wantB)
	}
	mf := parse(t, text)["req_seconds"]
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("type %v, want histogram", mf.GetType())
	}
	if n := len(mf.GetMetric()); n != 2 {
		t.Fatalf("%d histograms, want 2", n)
	}
	if r := labels(mf.GetMetric()[0])["route"]; r != "/a" {
		t.Errorf("first histogram is %q, want /a: samples sorted by label values", r)
	}
	hb := mf.GetMetric()[1].GetHistogram()
	if hb.GetSampleCount() != 6 || hb.GetSampleSum() != 12.5 {
		t.Errorf("count %d sum %v, want 6 and 12.5", hb.GetSampleCount(), hb.GetSampleSum())
	}
	want := []uint64{1, 3, 4}
	for i, b := range hb.GetBucket() {
		if i >= len(bounds) {
			if !math.IsInf(b.GetUpperBound(), +1) || b.GetCumulativeCount() != 6 {
				t.Errorf("last bucket le=%v count %d, want +Inf and 6", b.GetUpperBound(), b.GetCumulativeCount())
			}
			continue
		}
		if b.GetUpperBound() != bounds[i] || b.GetCumulativeCount() != want[i] {
			t.Errorf("bucket %d: le=%v count %d, want le=%v count %d", i, b.GetUpperBound(), b.GetCumulativeCount(), bounds[i], want[i])
		}
	}
}

func TestParsesAsTyped(t *testing.T) {
	var s promtext.Set
	s.Counter("c_total", "C.").Add(7)
	s.Gauge("g", "G.").Add(-2)
	mf := parse(t, write(t, &s))
	if got := mf["c_total"].GetMetric()[0].GetCounter().GetValue(); mf["c_total"].GetType() != dto.MetricType_COUNTER || got != 7 {
		t.Errorf("c_total: %v %v, want a counter at 7", mf["c_total"].GetType(), got)
	}
	if got := mf["g"].GetMetric()[0].GetGauge().GetValue(); mf["g"].GetType() != dto.MetricType_GAUGE || got != -2 {
		t.Errorf("g: %v %v, want a gauge at -2", mf["g"].GetType(), got)
	}
}

func TestInvalidWritesNothing(t *testing.T) {
	for name, build := range map[string]func(s *promtext.Set){
		"too few label values":  func(s *promtext.Set) { s.Counter("a_total", "A.", "x", "y").Add(1, "only") },
		"too many label values": func(s *promtext.Set) { s.Gauge("a", "A.").Add(1, "extra") },
		"bad metric name":       func(s *promtext.Set) { s.Gauge("1abc", "A.").Add(1) },
		"empty metric name":     func(s *promtext.Set) { s.Gauge("", "A.").Add(1) },
		"bad label name":        func(s *promtext.Set) { s.Gauge("a", "A.", "a-b").Add(1, "v") },
		"reserved label name":   func(s *promtext.Set) { s.Gauge("a", "A.", "__name").Add(1, "v") },
		"label given twice":     func(s *promtext.Set) { s.Gauge("a", "A.", "x", "x").Add(1, "v", "w") },
		"le on a histogram":     func(s *promtext.Set) { s.Histogram("h", "H.", nil, "le").AddHistogram(nil, 0, 0, "1") },
		"bounds not ascending":  func(s *promtext.Set) { s.Histogram("h", "H.", []float64{1, 1}).AddHistogram([]uint64{0, 0}, 0, 0) },
		"infinite bound":        func(s *promtext.Set) { s.Histogram("h", "H.", []float64{math.Inf(1)}).AddHistogram([]uint64{0}, 0, 0) },
		"bucket count mismatch": func(s *promtext.Set) { s.Histogram("h", "H.", []float64{1}).AddHistogram(nil, 0, 0) },
		"Add on a histogram":    func(s *promtext.Set) { s.Histogram("h", "H.", nil).Add(1) },
		"AddHistogram on gauge": func(s *promtext.Set) { s.Gauge("g", "G.").AddHistogram(nil, 0, 0) },
		"duplicate family": func(s *promtext.Set) {
			s.Gauge("a", "A.").Add(1)
			s.Counter("a", "A.").Add(1)
		},
		"duplicate sample": func(s *promtext.Set) {
			f := s.Gauge("a", "A.", "x")
			f.Add(1, "v")
			f.Add(2, "v")
		},
		"invalid UTF-8 value": func(s *promtext.Set) { s.Gauge("a", "A.", "x").Add(1, "\xff") },
		"invalid UTF-8 help":  func(s *promtext.Set) { s.Gauge("a", "\xff").Add(1) },
	} {
		t.Run(name, func(t *testing.T) {
			var s promtext.Set
			s.Counter("fine_total", "Fine.").Add(1)
			build(&s)
			var b bytes.Buffer
			n, err := s.WriteTo(&b)
			if err == nil {
				t.Fatalf("no error; wrote\n%s", b.String())
			}
			if n != 0 || b.Len() != 0 {
				t.Errorf("wrote %d bytes despite %v", b.Len(), err)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	var s promtext.Set
	s.Gauge("a", "A.").Add(1)
	if _, err := s.WriteTo(failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

func TestLargeOutputParses(t *testing.T) {
	var s promtext.Set
	f := s.Gauge("many", "Many samples, written in several chunks.", "i")
	const n = 2000
	for i := range n {
		f.Add(float64(i), strings.Repeat("x", i%7)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
	}
	s.Counter("z_total", "After the big family.").Add(1)
	mf := parse(t, write(t, &s))
	if got := len(mf["many"].GetMetric()); got != n {
		t.Errorf("%d samples parsed, want %d", got, n)
	}
	if mf["z_total"] == nil {
		t.Error("family after a flush is missing")
	}
}

func BenchmarkWriteTo(b *testing.B) {
	bounds := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	buckets := make([]uint64, len(bounds))
	workers := []string{"0", "1", "2", "3", "4", "5", "6", "7", "none"}
	codes := []string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	var out bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		var s promtext.Set
		f := s.Counter("requests_total", "Requests.", "code", "worker")
		for _, c := range codes {
			for _, w := range workers {
				f.Add(12345, c, w)
			}
		}
		s.Histogram("duration_seconds", "Durations.", bounds).AddHistogram(buckets, 99, 1.25)
		g := s.Gauge("rss_bytes", "RSS.", "worker")
		for _, w := range workers {
			g.Add(4.5e7, w)
		}
		out.Reset()
		if _, err := s.WriteTo(&out); err != nil {
			b.Fatal(err)
		}
	}
}
