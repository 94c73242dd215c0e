package process

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	// The command name holds spaces and parentheses, as a process may name itself.
	const line = "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 1200 0 3 0 " +
		"157 43 0 0 20 0 9 0 98765 1299075072 2772 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := stat{utime: 157, stime: 43, starttime: 98765, vsize: 1299075072, rss: 2772}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"1 (x) S 1 2 3",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 notanumber 0 0 0 20 0 1 0 5 6 7\n",
	} {
		if _, err := parseStat([]byte(in)); err == nil {
			t.Errorf("parseStat(%q) did not fail", in)
		}
	}
}

func TestParseBootTime(t *testing.T) {
	data := "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 1 2 3\nctxt 99\nbtime 1700000000\nprocesses 5\n"
	if got, err := parseBootTime([]byte(data)); err != nil || got != 1700000000 {
		t.Errorf("parseBootTime = %d, %v; want 1700000000", got, err)
	}
	if _, err := parseBootTime([]byte("cpu 1 2\n")); err == nil {
		t.Error("parseBootTime without a btime line did not fail")
	}
}

func TestCountEntries(t *testing.T) {
	dir := t.TempDir()
	const n = 300 // more than one Readdirnames batch
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := countEntries(dir); err != nil || got != n {
		t.Errorf("countEntries = %d, %v; want %d", got, err, n)
	}
	if _, err := countEntries(filepath.Join(dir, "missing")); err == nil {
		t.Error("countEntries of a missing directory did not fail")
	}
}
