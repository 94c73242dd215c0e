package main

import (
	"os"
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
