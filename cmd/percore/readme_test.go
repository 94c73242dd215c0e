package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeListsEveryFlag keeps the README's flags table in step with the
// flags percore has.
func TestReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range options() {
		row := "| `--" + o.name
		if !strings.Contains(string(readme), row) || !strings.Contains(string(readme), "`"+o.envName()+"`") {
			t.Errorf("README's flags table lacks --%s with %s", o.name, o.envName())
		}
	}
}

// TestReadmeSizingTable checks every row of the README's sizing table
// against what "percore plan" prints for that machine.
func TestReadmeSizingTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// | 512 MiB, 2 CPU | 2 | 147 MiB | 227 MiB | 2 × 213 MiB |
	row := regexp.MustCompile(`(?m)^\| (\d+) (MiB|GiB), (\d+) CPU \| (\d+)[^|]* \| (\d+) MiB \| (\d+) MiB \| (\d+) × (\d+) MiB \|$`)
	rows := row.FindAllStringSubmatch(string(readme), -1)
	if len(rows) < 5 {
		t.Fatalf("found %d rows of the sizing table in README.md", len(rows))
	}
	plan := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"plan"}, args...), []string{"PATH=/usr/bin"}, &out, &errOut); code != 0 {
			t.Fatalf("plan %q: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	for _, r := range rows {
		memory := r[1] + strings.TrimSuffix(r[2], "iB")
		t.Run(memory+"/"+r[3], func(t *testing.T) {
			out := plan("--cpus", r[3], "--memory", memory)
			for _, want := range []string{"workers:  " + r[4] + " (", "heap:     " + r[5] + "MiB", "budget:   " + r[6] + "MiB"} {
				if !strings.Contains(out, want) {
					t.Errorf("README row %q: plan lacks %q:\n%s", r[0], want, out)
				}
			}
			out = plan("--cpus", r[3], "--memory", memory, "--swap", "512M", "--include-swap")
			for _, want := range []string{"workers:  " + r[7] + " (", "heap:     " + r[8] + "MiB"} {
				if !strings.Contains(out, want) {
					t.Errorf("README row %q with swap: plan lacks %q:\n%s", r[0], want, out)
				}
			}
		})
	}
}
