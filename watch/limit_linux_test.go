package watch

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestLimitErrorSaysHowToRaise(t *testing.T) {
	err := limitError(syscall.ENOSPC, 8191)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("limitError(ENOSPC) = %v", err)
	}
	for _, want := range []string{"8191 directories", "sudo sysctl fs.inotify.max_user_watches=524288", "/etc/sysctl.d", "--watch-ignore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := limitError(syscall.EMFILE, 0); err == nil || !strings.Contains(err.Error(), "fs.inotify.max_user_instances") {
		t.Errorf("limitError(EMFILE) = %v", err)
	}
	if limitError(syscall.EACCES, 0) != nil {
		t.Error("EACCES is not a limit")
	}
}
