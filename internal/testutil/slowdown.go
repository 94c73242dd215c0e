package testutil

import (
	"os"
	"strconv"
	"time"
)

// Slowdown is how many times slower than an idle machine the tests may find
// this one: PERCORE_TEST_SLOWDOWN (default 1; scripts/test makes it 3 in
// CI, where other jobs share the cores). Waits for workers and events are
// multiplied by it; nothing is ever asserted to be fast with it.
func Slowdown() float64 {
	if f, err := strconv.ParseFloat(os.Getenv("PERCORE_TEST_SLOWDOWN"), 64); err == nil && f >= 1 {
		return f
	}
	return 1
}

// Scaled returns d multiplied by Slowdown.
func Scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Slowdown())
}
