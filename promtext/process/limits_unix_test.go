//go:build unix

package process

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestSoftLimit(t *testing.T) {
	for name, resource := range map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_AS": unix.RLIMIT_AS} {
		var rl unix.Rlimit
		if err := unix.Getrlimit(resource, &rl); err != nil {
			t.Fatal(err)
		}
		got, err := softLimit(resource)
		if err != nil {
			t.Fatal(err)
		}
		want := float64(rl.Cur)
		if rl.Cur == unix.RLIM_INFINITY {
			want = -1
		}
		if got != want {
			t.Errorf("softLimit(%s) = %v, want %v", name, got, want)
		}
	}
}
