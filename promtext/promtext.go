// Package promtext writes metric families in the Prometheus text exposition
// format, version 0.0.4.
//
// A Set collects the families of one scrape. Its WriteTo writes them sorted
// by name, and the samples of each family sorted by label values, so that the
// same values always give the same bytes. Families without samples are left
// out, as the Prometheus Go client does.
package promtext

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unicode/utf8"
)

// ContentType is the media type of what WriteTo writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// kind is the type of a metric family.
type kind uint8

const (
	counter kind = iota + 1
	gauge
	histogram
)

// String returns the kind as written on a TYPE line.
func (k kind) String() string {
	switch k {
	case counter:
		return "counter"
	case gauge:
		return "gauge"
	case histogram:
		return "histogram"
	}
	return "untyped"
}

// Set is the metric families of one scrape. The zero value is an empty Set
// ready to use. A Set is not safe for concurrent use.
type Set struct {
	families []*Family
}

// Counter adds a counter family to s and returns it to take samples. labels
// are the names of the family's labels, written in this order.
func (s *Set) Counter(name, help string, labels ...string) *Family {
	return s.add(&Family{name: name, help: help, kind: counter, labels: labels})
}

// Gauge adds a gauge family to s and returns it to take samples. labels are
// the names of the family's labels, written in this order.
func (s *Set) Gauge(name, help string, labels ...string) *Family {
	return s.add(&Family{name: name, help: help, kind: gauge, labels: labels})
}

// Histogram adds a histogram family to s and returns it to take samples.
// bounds are the upper bounds of its buckets, ascending, without the +Inf
// bucket that every histogram has. labels are the names of the family's
// labels, written in this order, before "le".
func (s *Set) Histogram(name, help string, bounds []float64, labels ...string) *Family {
	return s.add(&Family{name: name, help: help, kind: histogram, bounds: bounds, labels: labels})
}

func (s *Set) add(f *Family) *Family {
	s.families = append(s.families, f)
	return f
}

// WriteTo writes the families of s to w in the text format and returns the
// number of bytes written. It checks every family first and writes nothing
// when one is invalid: a name the format does not allow, a misuse of Add or
// AddHistogram, two families with the same name, or two samples of a family
// with the same label values. It sorts the families and their samples in
// place.
func (s *Set) WriteTo(w io.Writer) (int64, error) {
	if err := s.prepare(); err != nil {
		return 0, err
	}
	const flushAt = 4 << 10
	buf := make([]byte, 0, flushAt)
	var n int64
	for _, f := range s.families {
		buf = f.appendText(buf)
		if len(buf) < flushAt {
			continue
		}
		if err := write(w, buf, &n); err != nil {
			return n, err
		}
		buf = buf[:0]
	}
	return n, write(w, buf, &n)
}

// prepare sorts the families and their samples and checks them.
func (s *Set) prepare() error {
	slices.SortFunc(s.families, func(a, b *Family) int { return cmp.Compare(a.name, b.name) })
	for i, f := range s.families {
		if i > 0 && s.families[i-1].name == f.name {
			return fmt.Errorf("promtext: two families named %q", f.name)
		}
		if err := f.prepare(); err != nil {
			return fmt.Errorf("promtext: family %q: %w", f.name, err)
		}
	}
	return nil
}

func write(w io.Writer, b []byte, n *int64) error {
	if len(b) == 0 {
		return nil
	}
	m, err := w.Write(b)
	*n += int64(m)
	if err != nil {
		return fmt.Errorf("promtext: write: %w", err)
	}
	return nil
}

// Family is one metric family of a Set: samples that share a name, a help
// text, a type and label names. A misuse of its methods (the wrong number of
// label values, the wrong kind of sample) is reported by the Set's WriteTo.
type Family struct {
	name, help string
	kind       kind
	labels     []string
	bounds     []float64 // histograms only
	samples    []sample
	err        error // the first misuse
}

// sample is one sample of a family.
type sample struct {
	values  []string // label values, in the order of Family.labels
	value   float64  // a histogram's sum
	count   uint64   // histograms only: the number of observations
	buckets []uint64 // histograms only: cumulative counts at Family.bounds
}

// Add adds a counter or gauge sample with one value per label name, in the
// order of the family's label names. labelValues is kept until WriteTo.
func (f *Family) Add(value float64, labelValues ...string) {
	if f.kind == histogram {
		f.fail(errors.New("Add on a histogram, which takes AddHistogram"))
		return
	}
	if f.checkValues(labelValues) {
		f.samples = append(f.samples, sample{values: labelValues, value: value})
	}
}

// AddHistogram adds a histogram sample with one value per label name, in the
// order of the family's label names. buckets[i] is the number of
// observations at or below the family's i-th bound (cumulative counts, one
// per bound), count the number of all observations (the +Inf bucket) and sum
// their total. buckets and labelValues are kept until WriteTo.
func (f *Family) AddHistogram(buckets []uint64, count uint64, sum float64, labelValues ...string) {
	switch {
	case f.kind != histogram:
		f.fail(fmt.Errorf("AddHistogram on a %s", f.kind))
	case len(buckets) != len(f.bounds):
		f.fail(fmt.Errorf("%d bucket counts for %d bounds", len(buckets), len(f.bounds)))
	case f.checkValues(labelValues):
		f.samples = append(f.samples, sample{values: labelValues, value: sum, count: count, buckets: buckets})
	}
}

func (f *Family) checkValues(values []string) bool {
	if len(values) != len(f.labels) {
		f.fail(fmt.Errorf("%d label values for %d labels", len(values), len(f.labels)))
		return false
	}
	return true
}

func (f *Family) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

// prepare sorts the samples of f by label values and checks f.
func (f *Family) prepare() error {
	if f.err != nil {
		return f.err
	}
	if err := f.checkNames(); err != nil {
		return err
	}
	if !utf8.ValidString(f.help) {
		return errors.New("help text is not valid UTF-8")
	}
	slices.SortFunc(f.samples, func(a, b sample) int { return slices.Compare(a.values, b.values) })
	for i, s := range f.samples {
		if i > 0 && slices.Equal(f.samples[i-1].values, s.values) {
			return fmt.Errorf("two samples with label values %q", s.values)
		}
		for _, v := range s.values {
			if !utf8.ValidString(v) {
				return fmt.Errorf("label value %q is not valid UTF-8", v)
			}
		}
	}
	return nil
}

// checkNames checks the metric name, the label names and, for a histogram,
// the bucket bounds.
func (f *Family) checkNames() error {
	if !validMetricName(f.name) {
		return errors.New("invalid metric name")
	}
	for i, l := range f.labels {
		switch {
		case !validLabelName(l):
			return fmt.Errorf("invalid label name %q", l)
		case slices.Contains(f.labels[:i], l):
			return fmt.Errorf("label %q given twice", l)
		case l == "le" && f.kind == histogram:
			return errors.New(`label "le" is the bucket bound of a histogram`)
		}
	}
	if f.kind == histogram {
		return checkBounds(f.bounds)
	}
	return nil
}

// checkBounds checks that bucket bounds are finite and strictly ascending.
func checkBounds(bounds []float64) error {
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("bucket bound %v is not a finite number", b)
		}
		if i > 0 && b <= bounds[i-1] {
			return fmt.Errorf("bucket bounds are not ascending at %v", b)
		}
	}
	return nil
}
