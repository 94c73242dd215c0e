package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/percore/percore/health"
)

// topEvery is how often percore top reads /status.
const topEvery = time.Second

// Terminal control sequences percore top uses (ECMA-48 and xterm's
// alternate screen, which every terminal emulator in use knows).
const (
	enterScreen = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	leaveScreen = "\x1b[?25h\x1b[?1049l" // cursor shown, the previous screen back
	homeCursor  = "\x1b[H"
	clearLine   = "\x1b[K"
	clearBelow  = "\x1b[J"
)

// runTop shows the percore status table of the percore at admin,
// refreshed in place once a second until q or Ctrl-C, like pm2 monit. When
// stdout is not a terminal it prints one table a second, one after the
// other, until a signal or a q line on stdin.
func runTop(admin string, stdin *os.File, stdout, stderr io.Writer) int {
	url := "http://" + dialAddr(admin) + "/status"
	first, err := fetchStatus(url)
	if err != nil {
		fmt.Fprintf(stderr, "percore top: %s\n", terminalSafe(err.Error()))
		return exitError
	}

	out, isTerm := stdout.(*os.File)
	isTerm = isTerm && term.IsTerminal(int(out.Fd()))
	screen := &topScreen{w: stdout, live: isTerm}
	if isTerm {
		screen.width = func() int {
			w, _, err := term.GetSize(int(out.Fd()))
			if err != nil {
				return 0
			}
			return w
		}
	}
	if isTerm && term.IsTerminal(int(stdin.Fd())) {
		// Raw input: q needs no Enter, and Ctrl-C arrives as a key.
		old, err := term.MakeRaw(int(stdin.Fd()))
		if err != nil {
			fmt.Fprintf(stderr, "percore top: %v\n", err)
			return exitError
		}
		defer term.Restore(int(stdin.Fd()), old)
	}
	screen.open()
	defer screen.close()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	keys := newKeyReader(stdin)
	defer keys.stop()

	tick := time.NewTicker(topEvery)
	defer tick.Stop()
	prev, lost := first, ""
	screen.draw(first, first, "")
	for {
		select {
		case <-keys.quit:
			return exitOK
		case <-sigs:
			return exitOK
		case <-tick.C:
		}
		now, err := fetchStatus(url)
		if err != nil {
			if lost == "" {
				lost = time.Now().Format(time.TimeOnly)
			}
			screen.draw(prev, prev, "lost contact with percore since "+lost+", retrying: "+terminalSafe(err.Error()))
			continue
		}
		if now.UptimeS < prev.UptimeS {
			prev = now // another percore answers now: no rate from two of them
		}
		lost = ""
		screen.draw(prev, now, "")
		prev = now
	}
}

// topScreen draws frames: in place on a terminal, one after the other
// elsewhere.
type topScreen struct {
	w     io.Writer
	live  bool
	width func() int // the terminal's columns; nil or 0: unknown
	buf   bytes.Buffer
}

func (s *topScreen) open() {
	if s.live {
		io.WriteString(s.w, enterScreen)
	}
}

func (s *topScreen) close() {
	if s.live {
		io.WriteString(s.w, leaveScreen)
	}
}

// draw writes one frame: the status table of now (rates since before),
// under a problem line when there is one.
func (s *topScreen) draw(before, now health.Status, problem string) {
	var table bytes.Buffer
	fmt.Fprintf(&table, "%s  (q to quit)\n", time.Now().Format(time.TimeOnly))
	if problem != "" {
		fmt.Fprintln(&table, problem)
	}
	printStatus(&table, before, now)
	s.buf.Reset()
	if !s.live {
		s.buf.Write(table.Bytes())
		s.buf.WriteByte('\n')
		s.w.Write(s.buf.Bytes())
		return
	}
	width := 0
	if s.width != nil {
		width = s.width()
	}
	s.buf.WriteString(homeCursor)
	for _, line := range strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n") {
		if width > 0 && len(line) > width {
			line = line[:width] // a wrapped line would push the frame down
		}
		s.buf.WriteString(line)
		s.buf.WriteString(clearLine + "\r\n")
	}
	s.buf.WriteString(clearBelow)
	s.w.Write(s.buf.Bytes())
}

// keyReader watches stdin for q (or Ctrl-C, which raw mode turns into a
// key) and closes quit when it comes. It polls with a short timeout so
// that stop can end it: a blocked read of a terminal cannot be interrupted.
type keyReader struct {
	in   *os.File
	quit chan struct{}
	done chan struct{}
	halt chan struct{}
	once sync.Once
}

func newKeyReader(in *os.File) *keyReader {
	k := &keyReader{in: in, quit: make(chan struct{}), done: make(chan struct{}), halt: make(chan struct{})}
	go k.run()
	return k
}

func (k *keyReader) run() {
	defer close(k.done)
	fds := []unix.PollFd{{Fd: int32(k.in.Fd()), Events: unix.POLLIN}}
	buf := make([]byte, 64)
	for {
		select {
		case <-k.halt:
			return
		default:
		}
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		if err != nil || fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return
		}
		n, err = k.in.Read(buf)
		if bytes.ContainsAny(buf[:n], "qQ\x03") {
			close(k.quit)
			return
		}
		if err != nil || n == 0 {
			return // end of input: only signals end top now
		}
	}
}

// stop ends the reader and waits for it.
func (k *keyReader) stop() {
	k.once.Do(func() { close(k.halt) })
	<-k.done
}
