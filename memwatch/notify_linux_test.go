//go:build linux

package memwatch

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a process that holds
// MEMWATCH_HOLD_MB MiB of touched memory until its stdin closes.
func TestMain(m *testing.M) {
	if s := os.Getenv("MEMWATCH_HOLD_MB"); s != "" {
		mb, _ := strconv.Atoi(s)
		hold := make([]byte, mb<<20)
		for i := 0; i < len(hold); i += 4096 {
			hold[i] = 1
		}
		fmt.Println("holding")
		bufio.NewReader(os.Stdin).ReadString('\n')
		hold[0] = 2
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCrossed(t *testing.T) {
	levels := []uint64{100, 200}
	for _, c := range []struct {
		from, to uint64
		want     bool
	}{
		{50, 99, false},
		{50, 100, true},
		{150, 250, true},
		{250, 150, true},
		{100, 150, false},
		{210, 300, false},
	} {
		if got := crossed(c.from, c.to, levels); got != c.want {
			t.Errorf("crossed(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

// TestLevelsAlarm registers a level 16 MiB above a fresh cgroup's usage
// and starts a process there that holds 48 MiB: the Watch alarms when it
// crosses the level, and again when the process exits and the usage falls
// back across it. It skips where no cgroup takes registrations from it.
func TestLevelsAlarm(t *testing.T) {
	cg := testutil.NewMemoryCgroup(t, 256<<20)
	w, err := Open(cg.Dir, cg.Version, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Thresholds() {
		w.Close()
		t.Skipf("the cgroup takes no thresholds here (%q)", w.Notifies())
	}
	done := make(chan error, 1)
	go func() { done <- w.Run() }()
	defer func() {
		w.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after Close")
		}
	}()
	charged, _, limit, err := w.Usage()
	if err != nil || limit != 256<<20 {
		t.Fatalf("Usage() = %d, limit %d, %v", charged, limit, err)
	}
	level := charged + 16<<20
	before := w.registered.Load()
	w.SetLevels(charged, []uint64{level, limit - 8<<20})
	// The registration takes the kernel tens of milliseconds, and a level
	// crossed before it alarms at once: wait until the kernel has it.
	waitRegistered(t, w, before)

	hog := exec.Command(cg.Wrapper()[0], append(cg.Wrapper()[1:], os.Args[0], "-test.run=^$")...)
	hog.Env = append(os.Environ(), "MEMWATCH_HOLD_MB=48")
	stdin, err := hog.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := hog.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hog.Start(); err != nil {
		t.Fatal(err)
	}
	defer hog.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	awaitAlarm(t, w, "the usage rose across the level")
	if now, _, _, _ := w.Usage(); now < level {
		t.Errorf("alarmed at %d MiB, below the level %d MiB", now>>20, level>>20)
	}
	stdin.Close()
	if err := hog.Wait(); err != nil {
		t.Fatalf("the holder: %v", err)
	}
	awaitAlarm(t, w, "the usage fell back across the level")
}

// waitRegistered waits until the kernel has the levels asked for, and
// drops an alarm that came before.
func waitRegistered(t *testing.T, w *Watch, before int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.registered.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the levels were not registered within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-w.Alarms():
	default:
	}
}

func awaitAlarm(t *testing.T, w *Watch, what string) {
	t.Helper()
	select {
	case <-w.Alarms():
	case <-time.After(10 * time.Second):
		t.Fatalf("no alarm within 10s: %s", what)
	}
}

// TestPSITrigger sets the v2 trigger on a fresh cgroup of the unified
// hierarchy, where one is mounted and may be written: the kernel takes it
// (with or without CAP_SYS_RESOURCE), and no pressure is reported on a
// cgroup without tasks. It skips elsewhere.
func TestPSITrigger(t *testing.T) {
	var dir string
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
			continue
		}
		d := filepath.Join(root, fmt.Sprintf("percore-psi-%d-%d", os.Getpid(), time.Now().UnixNano()))
		if err := os.Mkdir(d, 0o755); err == nil {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Skip("no writable cgroup v2 hierarchy here")
	}
	defer os.Remove(dir)
	psi, err := openPSI(dir)
	if errors.Is(err, unix.EINVAL) {
		t.Fatalf("the kernel refuses the trigger: %v", err)
	}
	if err != nil {
		t.Skipf("no PSI trigger here: %v", err)
	}
	defer psi.Close()
	fds := []unix.PollFd{{Fd: int32(psi.Fd()), Events: unix.POLLPRI}}
	if n, err := unix.Poll(fds, 0); err != nil || n != 0 {
		t.Errorf("poll of an idle cgroup's trigger = %d (%#x), %v; want nothing", n, fds[0].Revents, err)
	}
}
