//go:build linux

package memwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// psiTrigger wakes the Watch when tasks of a v2 cgroup stalled on memory
// for 50 ms within 2 s: reclaim at the limit, before an OOM kill. A window
// of whole 2 s is what the kernel takes without CAP_SYS_RESOURCE.
const psiTrigger = "some 50000 2000000"

// notifier holds the descriptors the loop polls. Only the loop uses them
// once Run has started; wakeUp may be called from anywhere.
type notifier struct {
	what       string
	thresholds bool
	wake       int // eventfd: SetLevels and Close wake the loop

	// cgroup v1
	control  *os.File // cgroup.event_control
	usage    *os.File // memory.usage_in_bytes: the file the levels are on
	levels   int      // eventfd of the levels registered last; -1: none
	pressure int      // eventfd of memory.pressure_level's medium level; -1: none
	lastErr  string   // the last registration error logged

	// cgroup v2
	events *os.File // memory.events, polled for POLLPRI
	psi    *os.File // memory.pressure with a trigger, polled for POLLPRI

	closeOnce sync.Once
}

// openNotifier prepares the notifications of the cgroup in dir.
func openNotifier(dir string, version int) (*notifier, error) {
	wake, err := newEventfd()
	if err != nil {
		return nil, err
	}
	n := &notifier{wake: wake, levels: -1, pressure: -1}
	if version == 1 {
		err = n.openV1(dir)
	} else {
		err = n.openV2(dir)
	}
	if err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// openV1 opens cgroup.event_control and registers memory.pressure_level's
// medium level, which proves that the kernel takes registrations from us.
func (n *notifier) openV1(dir string) error {
	var err error
	if n.control, err = os.OpenFile(filepath.Join(dir, "cgroup.event_control"), os.O_WRONLY, 0); err != nil {
		return fmt.Errorf("cgroup v1 notifications: %w", err)
	}
	if n.usage, err = os.Open(filepath.Join(dir, "memory.usage_in_bytes")); err != nil {
		return fmt.Errorf("cgroup v1 notifications: %w", err)
	}
	level, err := os.Open(filepath.Join(dir, "memory.pressure_level"))
	if err != nil {
		return fmt.Errorf("cgroup v1 notifications: %w", err)
	}
	defer level.Close()
	if n.pressure, err = newEventfd(); err != nil {
		return err
	}
	if err := n.register(n.pressure, level, "medium"); err != nil {
		return fmt.Errorf("cgroup v1 notifications: memory.pressure_level: %w", err)
	}
	n.what, n.thresholds = "cgroup v1 usage thresholds and memory.pressure_level", true
	return nil
}

// openV2 opens memory.events and, where percore may write it, sets a PSI
// trigger on memory.pressure.
func (n *notifier) openV2(dir string) error {
	var err error
	if n.events, err = os.Open(filepath.Join(dir, "memory.events")); err != nil {
		return fmt.Errorf("cgroup v2 notifications: %w", err)
	}
	rearm(n.events)
	n.what = "cgroup v2 memory.events"
	if psi, err := openPSI(dir); err == nil {
		n.psi = psi
		n.what += " and a memory.pressure trigger"
	}
	return nil
}

// openPSI sets a PSI trigger on the memory.pressure of the v2 cgroup in
// dir; the file it returns is ready for POLLPRI when the trigger fires.
func openPSI(dir string) (*os.File, error) {
	psi, err := os.OpenFile(filepath.Join(dir, "memory.pressure"), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	// The kernel reads the written bytes as a C string whose last byte it
	// overwrites with NUL: the NUL is written with it.
	if _, err := psi.WriteString(psiTrigger + "\x00"); err != nil {
		psi.Close()
		return nil, fmt.Errorf("memory.pressure trigger %q: %w", psiTrigger, err)
	}
	return psi, nil
}

// register asks the kernel to signal efd for an event of file (cgroup v1):
// a usage threshold in bytes, or a pressure level.
func (n *notifier) register(efd int, file *os.File, arg string) error {
	line := strconv.Itoa(efd) + " " + strconv.Itoa(int(file.Fd())) + " " + arg
	if _, err := n.control.WriteString(line); err != nil {
		return err
	}
	return nil
}

// registerLevels replaces the registered levels with r's. A level crossed
// since r.base, while the kernel did not have it yet, alarms at once.
func (w *Watch) registerLevels(r *request) {
	n := w.n
	efd, err := newEventfd()
	if err == nil {
		for _, lv := range r.levels {
			if lv == 0 {
				continue
			}
			if err = n.register(efd, n.usage, strconv.FormatUint(lv, 10)); err != nil {
				unix.Close(efd)
				break
			}
		}
	}
	if err != nil {
		if msg := err.Error(); msg != n.lastErr {
			n.lastErr = msg
			w.log.Warn("memory cgroup: cannot register usage thresholds; the guard samples", "cgroup", w.dir, "error", err)
		}
		w.alarm() // the levels asked for are not watched: look now
		return
	}
	n.lastErr = ""
	if n.levels >= 0 {
		unix.Close(n.levels) // the kernel drops the old levels with their eventfd
	}
	n.levels = efd
	w.registered.Add(1)
	charged, _, _, err := w.Usage()
	if err != nil || crossed(r.base, charged, r.levels) {
		w.alarm()
	}
}

// crossed reports whether a level lies between from and to.
func crossed(from, to uint64, levels []uint64) bool {
	lo, hi := min(from, to), max(from, to)
	for _, lv := range levels {
		if lv > lo && lv <= hi {
			return true
		}
	}
	return false
}

// loop polls the notifications until Close.
func (w *Watch) loop() error {
	n := w.n
	for {
		fds := n.pollFds()
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		// The notifications first: a registration closes the old levels'
		// eventfd.
		for _, p := range fds[1:] {
			if p.Revents != 0 {
				n.consume(int(p.Fd))
				w.alarm()
			}
		}
		if fds[0].Revents == 0 {
			continue
		}
		drain(n.wake)
		if w.isClosed() {
			return nil
		}
		if r := w.take(); r != nil {
			w.registerLevels(r)
		}
	}
}

// pollFds lists the descriptors to poll, the wake eventfd first.
func (n *notifier) pollFds() []unix.PollFd {
	fds := []unix.PollFd{{Fd: int32(n.wake), Events: unix.POLLIN}}
	for _, fd := range []int{n.levels, n.pressure} {
		if fd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	for _, f := range []*os.File{n.events, n.psi} {
		if f != nil {
			fds = append(fds, unix.PollFd{Fd: int32(f.Fd()), Events: unix.POLLPRI})
		}
	}
	return fds
}

// consume reads what made fd ready, so that poll waits again.
func (n *notifier) consume(fd int) {
	for _, f := range []*os.File{n.events, n.psi} {
		if f != nil && int(f.Fd()) == fd {
			rearm(f)
			return
		}
	}
	drain(fd)
}

// wakeUp makes the loop look at the Watch's state.
func (n *notifier) wakeUp() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(n.wake, one[:]) // EAGAIN: a wake-up is pending already
}

// close releases every descriptor; the kernel drops the registrations
// with their eventfds.
func (n *notifier) close() {
	n.closeOnce.Do(func() {
		for _, fd := range []int{n.wake, n.levels, n.pressure} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		for _, f := range []*os.File{n.control, n.usage, n.events, n.psi} {
			if f != nil {
				f.Close()
			}
		}
	})
}

func newEventfd() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	return fd, nil
}

// drain resets an eventfd's counter.
func drain(fd int) {
	var buf [8]byte
	unix.Read(fd, buf[:]) // EAGAIN: nothing to read
}

// rearm reads a cgroup v2 file from its start, which makes its next
// change notify again.
func rearm(f *os.File) {
	var buf [512]byte
	f.ReadAt(buf[:], 0)
}
