package supervisor

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
)

// Fake workers: the test binary re-executes itself as a worker when
// PERCORE_FAKE_WORKER names one of these.
var fakeWorkers = map[string]func(){
	"serve":       fakeServe,
	"exit":        fakeExit,
	"ignore-term": fakeIgnoreTerm,
	"print":       fakePrint,
	"wrong-port":  fakeWrongPort,
	"fail-if":     fakeFailIf,
	"hog":         fakeHog,
	"grow":        fakeGrow,
	"slow-if":     fakeSlowIf,
	"slow-crash":  fakeSlowCrash,
	"crash-if":    fakeCrashIf,
	"detach":      fakeDetach,
	"sleep":       fakeSleep,
	"child-serve": fakeChildServe,
	"ping-env":    fakePingEnv,
	"inherited":   fakeInherited,
}

func TestMain(m *testing.M) {
	if name := os.Getenv("PERCORE_FAKE_WORKER"); name != "" {
		fn, ok := fakeWorkers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown fake worker %q\n", name)
			os.Exit(2)
		}
		fn()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeCommand returns the argv and env that run the fake worker name.
func fakeCommand(name string, env ...string) ([]string, []string) {
	return []string{os.Args[0], "-test.run=^$"},
		append(append(os.Environ(), "PERCORE_FAKE_WORKER="+name), env...)
}

// fakeServe listens on PORT, on FAKE_HOST (default 127.0.0.1), and accepts
// connections until SIGTERM.
func fakeServe() { fakeServeAnd(nil) }

// fakeServeAnd is fakeServe, calling listening, when set, once it listens.
func fakeServeAnd(listening func()) {
	host := os.Getenv("FAKE_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("serving as worker", os.Getenv("PERCORE_WORKER_ID"))
	if listening != nil {
		listening()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	os.Exit(0)
}

// fakeExit prints a line and exits with FAKE_CODE.
func fakeExit() {
	fmt.Fprintln(os.Stderr, "fatal: config missing")
	code, _ := strconv.Atoi(os.Getenv("FAKE_CODE"))
	os.Exit(code)
}

// fakeIgnoreTerm listens but ignores SIGTERM.
func fakeIgnoreTerm() {
	signal.Ignore(syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		os.Exit(1)
	}
	defer ln.Close()
	time.Sleep(time.Hour)
}

// fakePrint writes FAKE_LINES lines of FAKE_WIDTH bytes, in small pieces,
// then a partial line without newline, then serves.
func fakePrint() {
	n, _ := strconv.Atoi(os.Getenv("FAKE_LINES"))
	width, _ := strconv.Atoi(os.Getenv("FAKE_WIDTH"))
	id := os.Getenv("PERCORE_WORKER_ID")
	line := strings.Repeat(id, width) + "\n"
	for i := 0; i < n; i++ {
		half := len(line) / 2
		os.Stdout.WriteString(line[:half])
		os.Stdout.WriteString(line[half:])
	}
	os.Stdout.WriteString("partial-" + id)
	fakeServe()
}

// fakeWrongPort listens on a port other than PORT.
func fakeWrongPort() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	defer ln.Close()
	time.Sleep(time.Hour)
}

// fakeFailIf exits 1 at boot while the file FAKE_FAIL_FILE exists, and
// serves otherwise: a deploy whose new code is broken.
func fakeFailIf() {
	if _, err := os.Stat(os.Getenv("FAKE_FAIL_FILE")); err == nil {
		fmt.Fprintln(os.Stderr, "new code is broken")
		os.Exit(1)
	}
	fakeServe()
}

// fakeHog serves and holds FAKE_HOG_MB MiB of touched memory, or
// FAKE_HOG_MB_<worker id> MiB where that is set.
func fakeHog() {
	mb, _ := strconv.Atoi(os.Getenv("FAKE_HOG_MB"))
	if s := os.Getenv("FAKE_HOG_MB_" + os.Getenv("PERCORE_WORKER_ID")); s != "" {
		mb, _ = strconv.Atoi(s)
	}
	hold := make([]byte, mb<<20)
	for i := 0; i < len(hold); i += 4096 {
		hold[i] = 1
	}
	fakeServe()
	hold[0] = 2
}

// fakeSlowIf waits FAKE_SLOW before it serves while the file FAKE_SLOW_FILE
// exists: new code that takes a while to start.
func fakeSlowIf() {
	if _, err := os.Stat(os.Getenv("FAKE_SLOW_FILE")); err == nil {
		d, _ := time.ParseDuration(os.Getenv("FAKE_SLOW"))
		time.Sleep(d)
	}
	fakeServe()
}

// fakeSlowCrash starts slowly and dies soon after it listens: it waits
// FAKE_SLOW, listens on PORT, and exits 1 FAKE_LIVE later.
func fakeSlowCrash() {
	slow, _ := time.ParseDuration(os.Getenv("FAKE_SLOW"))
	live, _ := time.ParseDuration(os.Getenv("FAKE_LIVE"))
	time.Sleep(slow)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		os.Exit(1)
	}
	defer ln.Close()
	time.Sleep(live)
	fmt.Fprintln(os.Stderr, "fatal: lost the database connection")
	os.Exit(1)
}

// fakeCrashIf serves, and exits 1 FAKE_CRASH_AFTER after it listens while
// the file FAKE_CRASH_FILE exists: new code that breaks after listening.
// The delay runs from the listen, not from the start, and is scaled by the
// machine's slowdown: on a busy machine a process may take longer than the
// delay just to start, and would die before percore saw it ready.
func fakeCrashIf() {
	if _, err := os.Stat(os.Getenv("FAKE_CRASH_FILE")); err != nil {
		fakeServe()
		return
	}
	d, _ := time.ParseDuration(os.Getenv("FAKE_CRASH_AFTER"))
	fakeServeAnd(func() {
		go func() {
			time.Sleep(testutil.Scaled(d)) // a timer inside the fake app, as the app's own would be
			fmt.Fprintln(os.Stderr, "lost the database connection")
			os.Exit(1)
		}()
	})
}

// fakeDetach starts a child in a session of its own, which a signal to the
// worker's group misses, prints "child PID", and serves.
func fakeDetach() {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PERCORE_FAKE_WORKER=sleep")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("child %d\n", cmd.Process.Pid)
	fakeServe()
}

// fakeSleep sleeps for an hour; it ignores SIGTERM when
// FAKE_CHILD_IGNORES_TERM is set.
func fakeSleep() {
	if os.Getenv("FAKE_CHILD_IGNORES_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	time.Sleep(time.Hour)
}

// fakeGrow serves and keeps FAKE_GROW_MB MiB more of touched memory every
// 50 ms, up to FAKE_GROW_MAX_MB.
func fakeGrow() {
	step, _ := strconv.Atoi(os.Getenv("FAKE_GROW_MB"))
	most, _ := strconv.Atoi(os.Getenv("FAKE_GROW_MAX_MB"))
	var kept [][]byte
	go func() {
		for total := 0; total+step <= most; total += step {
			b := make([]byte, step<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept = append(kept, b)
			time.Sleep(50 * time.Millisecond)
		}
		for len(kept) > 0 { // hold on to it
			time.Sleep(time.Second)
			kept[0][0]++
		}
	}()
	fakeServe()
}

// fakeChildServe starts the fake worker serve as a child process, which
// listens on PORT, as node does under npm, and waits for it.
func fakeChildServe() {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PERCORE_FAKE_WORKER=serve")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		os.Exit(1)
	}
}

// fakePingEnv prints its ping address, then serves; with a Unix socket's
// path in PORT it listens there and at the ping address, and exits on
// SIGTERM leaving both socket files behind.
func fakePingEnv() {
	fmt.Println("ping at", os.Getenv(EnvPing))
	if !strings.HasPrefix(os.Getenv("PORT"), "/") {
		fakeServe()
		return
	}
	for _, path := range []string{os.Getenv("PORT"), os.Getenv(EnvPing)} {
		if _, err := net.Listen("unix", path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	os.Exit(0)
}

// fakeInherited serves the Unix socket passed in EnvUpstreamFD, after
// FAKE_DELAY_MS if set, and accepts connections until SIGTERM.
func fakeInherited() {
	fd, err := strconv.Atoi(os.Getenv(EnvUpstreamFD))
	if err != nil {
		fmt.Fprintln(os.Stderr, "no inherited socket:", err)
		os.Exit(1)
	}
	if ms, err := strconv.Atoi(os.Getenv("FAKE_DELAY_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	ln, err := net.FileListener(os.NewFile(uintptr(fd), "upstream"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("serving the inherited socket, PORT", os.Getenv("PORT"))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	<-term
	os.Exit(0)
}
