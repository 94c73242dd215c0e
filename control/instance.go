package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// abstractPrefix begins the address of every default abstract control
// socket: @percore/NAME.
const abstractPrefix = "@percore/"

// sockSuffix ends the file name of every default control socket file.
const sockSuffix = ".sock"

// InstanceName names a percore after its public address, for its default
// control socket: the port alone when it listens on every interface
// (--port), else HOST:PORT as given with --listen, with the port it got.
func InstanceName(host, port string) string {
	if host == "" {
		return port
	}
	return net.JoinHostPort(host, port)
}

// AbstractAddr is the address of the abstract control socket of the
// percore named name: @percore/NAME.
func AbstractAddr(name string) string { return abstractPrefix + name }

// FileAddr is the path of the control socket file of the percore named
// name, for systems without abstract sockets: NAME.sock in DefaultDir.
func FileAddr(name string) string {
	return filepath.Join(DefaultDir(), strings.ReplaceAll(name, "/", "_")+sockSuffix)
}

// ListenInstance opens the default control socket of the percore named
// name (see InstanceName): on Linux the abstract socket AbstractAddr(name),
// which needs no writable directory; where that cannot be had (another
// system, or a kernel that refuses it), the file FileAddr(name), in
// DefaultDir, which must be ours alone (else an *UnsafePathError). A name
// already taken is a
// *TakenError, not a reason to fall back: the commands would find the
// holder first. When neither socket can be had, the error says why for
// both.
func ListenInstance(name string, log hclog.Logger) (*Server, error) {
	return listenInstance(name, abstractOK, log)
}

func listenInstance(name string, abstract bool, log hclog.Logger) (*Server, error) {
	var abstractErr error
	if abstract {
		s, err := listenAbstract(AbstractAddr(name), log)
		var taken *TakenError
		if err == nil || errors.As(err, &taken) {
			return s, err
		}
		abstractErr = err
	}
	s, err := listenFile(name, log)
	if err != nil && abstractErr != nil {
		return nil, fmt.Errorf("%v; then %w", abstractErr, err)
	}
	return s, err
}

func listenFile(name string, log hclog.Logger) (*Server, error) {
	if err := makePrivateDir(DefaultDir(), os.Getuid()); err != nil {
		return nil, err
	}
	return listen(FileAddr(name), log)
}

// Socket is a default control socket found running on this machine.
type Socket struct {
	Name string // the percore's name (see InstanceName)
	Addr string // the socket, for Send and Ask: @percore/NAME or a path
}

// Port is the public port in s's name.
func (s Socket) Port() string {
	if _, port, err := net.SplitHostPort(s.Name); err == nil {
		return port
	}
	return s.Name
}

// Sockets lists the default control sockets of the percores running on
// this machine, sorted by name: on Linux, the listening abstract sockets
// in /proc/net/unix (this network namespace's) whose names start with
// @percore/; and the socket files in DefaultDir that accept a connection.
// Sockets given with --control elsewhere are not found. Nothing is sent to
// them, and who holds them is not checked: Send and Ask do that.
func Sockets() ([]Socket, error) {
	var found []Socket
	if abstractOK {
		f, err := os.Open("/proc/net/unix")
		if err != nil {
			return nil, fmt.Errorf("list abstract control sockets: %w", err)
		}
		names, err := abstractNames(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("list abstract control sockets: read /proc/net/unix: %w", err)
		}
		for _, n := range names {
			found = append(found, Socket{Name: n, Addr: AbstractAddr(n)})
		}
	}
	files, err := socketFiles(DefaultDir())
	if err != nil {
		return nil, err
	}
	found = append(found, files...)
	slices.SortFunc(found, func(a, b Socket) int { return strings.Compare(a.Name+a.Addr, b.Name+b.Addr) })
	return found, nil
}

// soAcceptCon is the flag of a listening socket in /proc/net/unix
// (__SO_ACCEPTCON).
const soAcceptCon = 1 << 16

// abstractNames reads /proc/net/unix and returns the names of the
// listening abstract sockets whose addresses start with @percore/, without
// that prefix. Any local user may bind any name, and the kernel shows its
// bytes as they are (a NUL as @), so only names that an address could give
// are kept (see validName): not one padded with NULs, which is another
// name than the one percore would dial, nor one with spaces, a line break
// or terminal escapes.
func abstractNames(r io.Reader) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&soAcceptCon == 0 {
			continue
		}
		name, ok := strings.CutPrefix(f[7], abstractPrefix)
		if !ok || len(f) > 8 || !validName(name) || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, sc.Err()
}

// validName accepts what InstanceName can make of an address that
// percore listened on: a port, or a host name or IP address (an IPv6 one
// in brackets, perhaps with a %zone) and a port.
func validName(name string) bool {
	if name == "" || len(name) > 80 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:[]%", r)
		if !ok {
			return false
		}
	}
	return true
}

// socketFiles lists the *.sock sockets in dir that accept a connection (a
// file left by a percore that died does not). A missing dir, or one we may
// not read (a TMPDIR of another user's), has none.
func socketFiles(dir string) ([]Socket, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list control sockets in %s: %w", dir, err)
	}
	var found []Socket
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), sockSuffix)
		if !ok || e.Type() != fs.ModeSocket || !validName(name) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			continue
		}
		c.Close()
		found = append(found, Socket{Name: name, Addr: path})
	}
	return found, nil
}
