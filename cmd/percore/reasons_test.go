package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/percore/percore/health"
	"github.com/percore/percore/supervisor"
)

// TestMetricsHelpNamesEveryEndReason: the restarts metric's help and its
// row in docs/reference/metrics.md name every reason the supervisor counts.
func TestMetricsHelpNamesEveryEndReason(t *testing.T) {
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.Lines(string(doc)) {
		if strings.Contains(line, "percore_worker_restarts_total") {
			row = line
		}
	}
	for _, r := range supervisor.EndReasons() {
		if !r.Counted() {
			continue
		}
		if !strings.Contains(helpRestarts, r.String()) {
			t.Errorf("the restarts help does not name %q: %s", r, helpRestarts)
		}
		if !strings.Contains(row, r.String()) {
			t.Errorf("%s: the restarts row does not name %q: %s", metricsDoc, r, row)
		}
	}
}

// TestStatusReasonWordsAreEndReasons: the words the live page compares a
// last exit's reason with, and the health checker's ejection reason, are
// the supervisor's.
func TestStatusReasonWordsAreEndReasons(t *testing.T) {
	page, err := os.ReadFile(repoRoot + "/health/page.html")
	if err != nil {
		t.Fatal(err)
	}
	words := []string{health.EjectReason}
	for _, m := range regexp.MustCompile(`\.reason\s*[!=]==?\s*"([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		words = append(words, m[1])
	}
	if len(words) < 2 {
		t.Fatal("the page compares no reason; this test reads it wrongly")
	}
	for _, w := range words {
		if !slices.Contains(supervisor.EndReasons(), supervisor.EndReason(w)) {
			t.Errorf("%q is not one of supervisor.EndReasons()", w)
		}
	}
}
