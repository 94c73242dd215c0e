//go:build linux

package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listensOn reports whether a process of the worker's process group pgid
// holds a socket listening on port on loopback or on every address. It reads
// /proc, so a listener that another program opened on the same port is not
// mistaken for the worker.
func listensOn(pgid, port int) (bool, error) {
	pid, err := listenerOn(pgid, port)
	return pid != 0, err
}

// listenerOn returns the pid of a process of the worker's process group
// pgid that holds a socket listening on port on loopback or on every
// address; 0 when there is none.
func listenerOn(pgid, port int) (int, error) {
	inodes, err := listeningInodes(port)
	if err != nil || len(inodes) == 0 {
		return 0, err
	}
	return groupHolder(pgid, inodes), nil
}

// groupHolds reports whether a process of group pgid holds one of the
// sockets.
func groupHolds(pgid int, inodes map[string]bool) bool {
	return groupHolder(pgid, inodes) != 0
}

// groupHolder returns a process of group pgid that holds one of the
// sockets, or 0: the leader first, which is the common case, then the
// others.
func groupHolder(pgid int, inodes map[string]bool) int {
	if holdsSocket(pgid, inodes) {
		return pgid
	}
	for _, pid := range groupMembers(pgid) {
		if pid != pgid && holdsSocket(pid, inodes) {
			return pid
		}
	}
	return 0
}

// commandLine returns a process's command line, its arguments joined by
// spaces, or "" when it cannot be read.
func commandLine(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	line := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}

// listeningInodes returns the socket inodes listening on port, read from
// /proc/net/tcp and /proc/net/tcp6.
func listeningInodes(port int) (map[string]bool, error) {
	inodes := make(map[string]bool)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		collectListeners(data, port, inodes)
	}
	return inodes, nil
}

// exposedOn returns the addresses beyond loopback (every interface, or a
// host's own address) on which a process of group pgid listens on port, as
// "0.0.0.0:3000" or "[::]:3000".
func exposedOn(pgid, port int) []string {
	var out []string
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for hex, inode := range wideListeners(data, port) {
			if groupHolds(pgid, map[string]bool{inode: true}) {
				out = append(out, net.JoinHostPort(procAddr(hex), strconv.Itoa(port)))
			}
		}
	}
	return out
}

// wideListeners returns the sockets listening on port on an address that is
// not loopback, address (hex) to inode.
func wideListeners(data []byte, port int) map[string]string {
	out := map[string]string{}
	eachListener(data, port, func(host, inode string) {
		if !procLoopback(host) {
			out[host] = inode
		}
	})
	return out
}

// eachListener calls fn with the address (hex, as the kernel stores it)
// and the socket inode ("socket:[N]") of every socket in data, a
// /proc/net/tcp or tcp6 table, that listens on port.
func eachListener(data []byte, port int, fn func(host, inode string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		host, p, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(p, 16, 16); err == nil && int(n) == port {
			fn(host, "socket:["+f[9]+"]")
		}
	}
}

// procLoopback tells whether a /proc/net/tcp address is 127.0.0.0/8, ::1 or
// ::ffff:127.x.
func procLoopback(hex string) bool {
	return loopbackOrAny(hex) && strings.Trim(hex, "0") != ""
}

// procAddr turns a /proc/net/tcp address (hex, 32-bit words in host order)
// into an IP's text.
func procAddr(hex string) string {
	b, err := hexBytes(hex)
	if err != nil {
		return hex
	}
	for i := 0; i+4 <= len(b); i += 4 { // each 32-bit word is little-endian
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b).String()
}

func hexBytes(hex string) ([]byte, error) {
	b := make([]byte, len(hex)/2)
	for i := range b {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		b[i] = byte(v)
	}
	return b, nil
}

// tcpListen is the state of a listening socket in /proc/net/tcp, and
// tcpEstablished that of a connected one.
const (
	tcpListen      = "0A"
	tcpEstablished = "01"
)

// connsOn returns how many established TCP connections whose local port is
// port the processes of group pgid hold: in direct mode, the connections
// a worker accepted on its public socket. It returns 0 for port 0.
func connsOn(pgid, port int) int {
	if port == 0 {
		return 0
	}
	inodes := make(map[string]bool)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if data, err := os.ReadFile(name); err == nil {
			collectConnected(data, port, inodes)
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	held := make(map[string]bool)
	for _, pid := range groupMembers(pgid) {
		collectHeld(pid, inodes, held)
	}
	return len(held)
}

// collectConnected adds the inodes of the established sockets whose local
// port is port.
func collectConnected(data []byte, port int, into map[string]bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != tcpEstablished {
			continue
		}
		_, p, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(p, 16, 16); err == nil && int(n) == port {
			into["socket:["+f[9]+"]"] = true
		}
	}
}

// collectHeld adds the sockets of inodes that process pid holds to held.
func collectHeld(pid int, inodes, held map[string]bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && inodes[target] {
			held[target] = true
		}
	}
}

func collectListeners(data []byte, port int, into map[string]bool) {
	eachListener(data, port, func(host, inode string) {
		if loopbackOrAny(host) {
			into[inode] = true
		}
	})
}

// loopbackOrAny tells whether a /proc/net/tcp address (hex, as the kernel
// stores it) is 127.0.0.0/8, ::1, 0.0.0.0, :: or ::ffff:127.x.
func loopbackOrAny(hex string) bool {
	switch {
	case len(hex) == 8:
		return hex == "00000000" || strings.HasSuffix(hex, "7F")
	case len(hex) == 32:
		return strings.Trim(hex, "0") == "" ||
			hex == "00000000000000000000000001000000" ||
			(strings.HasPrefix(hex, "0000000000000000FFFF0000") && strings.HasSuffix(hex, "7F"))
	}
	return false
}

func holdsSocket(pid int, inodes map[string]bool) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err == nil && inodes[target] {
			return true
		}
	}
	return false
}

// groupMembers lists the pids whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, ok := processGroup(pid); ok && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processGroup reads the process group from /proc/PID/stat. The command
// name in parentheses may itself hold spaces and parentheses, so fields are
// counted after the last ')'.
func processGroup(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return 0, false
	}
	g, err := strconv.Atoi(f[2])
	return g, err == nil
}

// listensOnUnix reports whether a process of the group pgid holds a Unix
// socket listening at path, from /proc/net/unix.
func listensOnUnix(pgid int, path string) (bool, error) {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return false, fmt.Errorf("read /proc/net/unix: %w", err)
	}
	inodes := unixListeners(data, path)
	if len(inodes) == 0 {
		return false, nil
	}
	return groupHolds(pgid, inodes), nil
}

// unixAcceptCon is the flag of a listening socket in /proc/net/unix.
const unixAcceptCon = 0x10000

func unixListeners(data []byte, path string) map[string]bool {
	inodes := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[7] != path {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&unixAcceptCon == 0 {
			continue
		}
		inodes["socket:["+f[6]+"]"] = true
	}
	return inodes
}
