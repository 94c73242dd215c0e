package promtext

import (
	"math"
	"strconv"
	"strings"
)

// appendText appends f in the text format: its HELP and TYPE lines, then its
// samples. A family without samples appends nothing.
func (f *Family) appendText(b []byte) []byte {
	if len(f.samples) == 0 {
		return b
	}
	if f.help != "" {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.kind.String()...)
	b = append(b, '\n')
	for i := range f.samples {
		s := &f.samples[i]
		if f.kind == histogram {
			b = f.appendHistogram(b, s)
			continue
		}
		b = f.appendSeries(b, "", s.values)
		b = append(b, ' ')
		b = appendFloat(b, s.value)
		b = append(b, '\n')
	}
	return b
}

// appendHistogram appends the lines of one histogram sample: a _bucket line
// per bound and one for +Inf, then _sum and _count.
func (f *Family) appendHistogram(b []byte, s *sample) []byte {
	for i, le := range f.bounds {
		b = f.appendBucket(b, s.values, le, s.buckets[i])
	}
	b = f.appendBucket(b, s.values, math.Inf(+1), s.count)
	b = f.appendSeries(b, "_sum", s.values)
	b = append(b, ' ')
	b = appendFloat(b, s.value)
	b = append(b, '\n')
	b = f.appendSeries(b, "_count", s.values)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.count, 10)
	return append(b, '\n')
}

// appendBucket appends the _bucket line of bound le with n observations.
func (f *Family) appendBucket(b []byte, values []string, le float64, n uint64) []byte {
	b = append(b, f.name...)
	b = append(b, "_bucket{"...)
	for i, v := range values {
		b = appendLabel(b, f.labels[i], v)
		b = append(b, ',')
	}
	b = append(b, `le="`...)
	b = appendFloat(b, le)
	b = append(b, `"} `...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, '\n')
}

// appendSeries appends the family's name, suffix and the labels with values,
// in braces unless there are none.
func (f *Family) appendSeries(b []byte, suffix string, values []string) []byte {
	b = append(b, f.name...)
	b = append(b, suffix...)
	if len(values) == 0 {
		return b
	}
	b = append(b, '{')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, f.labels[i], v)
	}
	return append(b, '}')
}

// appendLabel appends name="value", the value escaped.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped appends s with its backslashes and line feeds escaped, and
// its double quotes too when quote is set: label values escape all three,
// help texts only the first two.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends f as the Prometheus Go client writes it: the shortest
// decimal or exponent form that reads back exactly, 0 for both zeros, and
// +Inf, -Inf and NaN.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(b, '0')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// validMetricName reports whether name is a metric name of the text format:
// [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && c != '_' && c != ':' && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return true
}

// validLabelName reports whether name is a label name of the text format,
// [a-zA-Z_][a-zA-Z0-9_]*, and not one reserved by Prometheus (leading "__").
func validLabelName(name string) bool {
	if name == "" || strings.HasPrefix(name, "__") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && c != '_' && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
