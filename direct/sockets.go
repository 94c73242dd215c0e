package direct

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// ErrClosed says the sockets were closed.
var ErrClosed = errors.New("direct sockets closed")

// Sockets are the public listening sockets of direct mode, one per slot.
// Create them with Open. They are safe for concurrent use.
type Sockets struct {
	log hclog.Logger

	mu     sync.Mutex // protects addr, files and closed
	addr   string     // the bound address, its port resolved once the first socket is bound
	files  map[int]*os.File
	closed bool
}

// Open binds the first socket, slot 0's, on addr (host:port; an empty host
// or port 0 as net.Listen takes them), so that a port already in use is
// reported before any worker starts.
func Open(addr string, log hclog.Logger) (*Sockets, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Sockets{log: log, addr: addr, files: make(map[int]*os.File)}
	if _, err := s.File(0); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr returns the public address the sockets are bound to, with its port
// resolved.
func (s *Sockets) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// File returns slot's listening socket, binding it on the public address
// the first time. The file stays owned by s: a caller passes it on to a
// child process and must not close it.
func (s *Sockets) File(slot int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if f := s.files[slot]; f != nil {
		return f, nil
	}
	f, bound, err := listenReusePort(s.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for worker %d: %w", s.addr, slot, err)
	}
	s.addr = bound
	s.files[slot] = f
	s.log.Debug("public socket bound", "worker", slot, "addr", bound)
	return f, nil
}

// Release closes slot's socket once the slot is gone (scaled down). The
// connections still queued on it move to the other sockets of the group
// where the kernel allows it (net.ipv4.tcp_migrate_req); otherwise they are
// reset.
func (s *Sockets) Release(slot int) {
	s.mu.Lock()
	f := s.files[slot]
	delete(s.files, slot)
	s.mu.Unlock()
	if f != nil {
		if err := f.Close(); err != nil {
			s.log.Warn("close public socket", "worker", slot, "error", err)
		}
	}
}

// Slots lists the slots that hold a socket, in order.
func (s *Sockets) Slots() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots := make([]int, 0, len(s.files))
	for id := range s.files {
		slots = append(slots, id)
	}
	sort.Ints(slots)
	return slots
}

// Close closes every socket. Workers that inherited one keep their own
// copies until they exit.
func (s *Sockets) Close() error {
	s.mu.Lock()
	files := s.files
	s.files, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolvedAddr is addr with the port the kernel chose for it.
func resolvedAddr(addr string, ln net.Listener) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ln.Addr().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}
