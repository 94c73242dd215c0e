//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// percoreBin is the percore binary built once for the suite.
var percoreBin string

// book collects each scenario's figures for the table printed at the end.
var book = &reportBook{}

// spawn starts every percore of the suite.
var spawn = newSpawner()

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "percore-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	percoreBin = filepath.Join(dir, "percore")
	build := exec.Command("go", "build", "-o", percoreBin, "./cmd/percore")
	build.Dir = ".." // the repository root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build percore:", err)
		return 1
	}
	if err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "raise the open file limit:", err)
	}
	code := m.Run()
	book.print(os.Stdout)
	return code
}
