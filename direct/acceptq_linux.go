//go:build linux

package direct

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// tcpListen is TCP_LISTEN, the state tcpi_state reports for a listener.
const tcpListen = 10

// errNotListening says a socket is not in the LISTEN state.
var errNotListening = errors.New("not a listening socket")

// acceptQueue returns how many connections wait in the accept queue of the
// listening socket f, and the queue's size (the backlog). Both come from
// one getsockopt(TCP_INFO): for a socket in LISTEN state, tcp_get_info
// (net/ipv4/tcp.c) reports sk_ack_backlog, the connections ready for
// accept(), in tcpi_unacked and sk_max_ack_backlog, the backlog, in
// tcpi_sacked; ss -lt prints the same pair as Recv-Q and Send-Q. Reading it
// takes nothing from the queue.
func acceptQueue(f *os.File) (queued, backlog int, err error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("read the accept queue: %w", err)
	}
	var info *unix.TCPInfo
	var serr error
	err = raw.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read the accept queue: %w", err)
	}
	if info.State != tcpListen {
		return 0, 0, errNotListening
	}
	return int(info.Unacked), int(info.Sacked), nil
}

// descriptors returns how many file descriptors process pid has open and
// its soft limit (RLIMIT_NOFILE, 0 for none). Since Linux 6.2, stat of
// /proc/PID/fd gives the count as the directory's size; older kernels give
// 0, and the directory is read instead. Two system calls in all, where
// percore may read the worker's limit with prlimit (the same user).
func descriptors(pid int) (open, limit int, err error) {
	dir := "/proc/" + strconv.Itoa(pid)
	var rl unix.Rlimit
	switch err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &rl); {
	case err != nil: // another user's process: its limits file is readable
		if limit, err = openFilesLimit(dir + "/limits"); err != nil {
			return 0, 0, err
		}
	case rl.Cur != unix.RLIM_INFINITY:
		limit = int(min(rl.Cur, 1<<31-1))
	}
	var st unix.Stat_t
	if err := unix.Stat(dir+"/fd", &st); err != nil {
		return 0, 0, fmt.Errorf("count the descriptors of pid %d: %w", pid, err)
	}
	if st.Size > 0 {
		return int(st.Size), limit, nil
	}
	d, err := os.Open(dir + "/fd")
	if err != nil {
		return 0, 0, fmt.Errorf("count the descriptors of pid %d: %w", pid, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, 0, fmt.Errorf("count the descriptors of pid %d: %w", pid, err)
	}
	return len(names), limit, nil
}

// openFilesLimit reads the soft limit of "Max open files" from a
// /proc/PID/limits file; 0 means unlimited.
func openFilesLimit(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read the descriptor limit: %w", err)
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Max open files"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			break
		}
		if string(fields[0]) == "unlimited" {
			return 0, nil
		}
		n, err := strconv.Atoi(string(fields[0]))
		if err != nil {
			return 0, fmt.Errorf("read the descriptor limit in %s: %w", path, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read the descriptor limit: no \"Max open files\" in %s", path)
}
