//go:build chaos

package chaos

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// figures is one row of the final table: a scenario, the requests its
// client load sent and how they ended, and the scenario's own figures.
type figures struct {
	id    string // "1", "6a": orders the table
	name  string
	mu    sync.Mutex // protects the fields below
	load  *tally
	extra []string
	state string // "kept", "BROKEN", "skipped"; "" while running
}

// reportBook holds the rows. It is safe for concurrent use.
type reportBook struct {
	mu    sync.Mutex // protects rows and began
	rows  []*figures
	began time.Time
}

// row adds a row for the scenario t runs. Call it first in the test, so
// that its cleanup, which records whether the promises held, runs last.
func (b *reportBook) row(t *testing.T, id, name string) *figures {
	f := &figures{id: id, name: name}
	b.mu.Lock()
	if b.began.IsZero() {
		b.began = time.Now()
	}
	b.rows = append(b.rows, f)
	b.mu.Unlock()
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case t.Skipped():
			f.state = "skipped"
		case t.Failed():
			f.state = "BROKEN"
		default:
			f.state = "kept"
		}
	})
	return f
}

// requests sets the row's request figures.
func (f *figures) requests(t tally) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.load = &t
}

// add appends a figure, formatted like fmt.Sprintf.
func (f *figures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extra = append(f.extra, fmt.Sprintf(format, args...))
}

// print writes the table, in Markdown.
func (b *reportBook) print(w io.Writer) {
	b.mu.Lock()
	rows := slices.Clone(b.rows)
	began := b.began
	b.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(x, y *figures) int { return compareIDs(x.id, y.id) })
	mode := "full"
	if testing.Short() {
		mode = "short (-short)"
	}
	node, _ := exec.Command("node", "--version").Output()
	fmt.Fprintf(w, "\n## percore chaos suite: %s run, %s, %d CPUs, %s, node %s, %s\n\n",
		mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(),
		strings.TrimSpace(string(node)), time.Since(began).Round(time.Second))
	fmt.Fprintln(w, "| # | scenario | sent | ok | failed (by reason) | figures | promise |")
	fmt.Fprintln(w, "|---|---|---:|---:|---|---|---|")
	for _, f := range rows {
		f.mu.Lock()
		sent, ok, failed := "-", "-", "-"
		if f.load != nil {
			sent, ok = strconv.Itoa(f.load.sent), strconv.Itoa(f.load.ok)
			failed = strconv.Itoa(f.load.failed())
			if f.load.failed() > 0 {
				failed += ": " + f.load.reasonsText()
			}
		}
		state := f.state
		if state == "" {
			state = "not finished"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", f.id, f.name, sent, ok, failed,
			strings.Join(f.extra, "; "), state)
		f.mu.Unlock()
	}
	fmt.Fprintln(w)
}

// compareIDs orders "2" before "10" and "6a" before "6b".
func compareIDs(a, b string) int {
	na, ra := splitID(a)
	nb, rb := splitID(b)
	if na != nb {
		return na - nb
	}
	return strings.Compare(ra, rb)
}

func splitID(id string) (int, string) {
	i := 0
	for i < len(id) && id[i] >= '0' && id[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(id[:i])
	return n, id[i:]
}

// ms formats a duration in milliseconds with one decimal for small values.
func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// mib formats bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
