package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// The variables a worker gets with Config.InheritSockets, read by the
// runtime's preload.
const (
	// EnvUpstreamFD is the descriptor of the inherited Unix socket where
	// the app's listen(PORT) is to listen.
	EnvUpstreamFD = "PERCORE_UPSTREAM_FD"
	// EnvUpstreamInode is the socket's inode, so that the preload can tell
	// the inherited socket from whatever a wrapper left at that descriptor.
	EnvUpstreamInode = "PERCORE_UPSTREAM_INODE"
)

// upstreamFD is the descriptor of the first of exec.Cmd's ExtraFiles.
const upstreamFD = 3

// upstreamSetup binds w's Unix socket in the socket directory and returns
// it, to be passed as descriptor 3, with the variables that tell the
// preload about it. The caller closes its copy once the worker started.
func (s *Supervisor) upstreamSetup(w *worker) (*os.File, []string, error) {
	w.sock = filepath.Join(s.cfg.SocketDir, "worker-"+strconv.FormatUint(w.key, 10)+".sock")
	w.inherit = true
	f, err := bindUnix(w.sock)
	if err != nil {
		return nil, nil, fmt.Errorf("socket of worker %d: %w", w.slot, err)
	}
	env := []string{EnvUpstreamFD + "=" + strconv.Itoa(upstreamFD)}
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			env = append(env, EnvUpstreamInode+"="+strconv.FormatUint(uint64(st.Ino), 10))
		}
	}
	return f, env, nil
}

// bindUnix binds a Unix stream socket at path and returns it, not
// listening: the worker's own listen(2) makes it accept, so it reads as
// listening (and is ready) exactly when the app listens, and a connection
// before that is refused rather than queued for an app that may never
// serve it.
func bindUnix(path string) (*os.File, error) {
	// Held like the net package holds it, so that no process started
	// meanwhile inherits the socket before it is close-on-exec.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
