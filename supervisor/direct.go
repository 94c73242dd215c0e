package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// The variables a worker gets in direct mode, read by the runtime's
// preload.
const (
	// EnvDirectFD is the descriptor of the inherited public socket.
	EnvDirectFD = "PERCORE_DIRECT_FD"
	// EnvDirectInode is the socket's inode, so that the preload can tell
	// the inherited socket from whatever a wrapper left at that descriptor.
	EnvDirectInode = "PERCORE_DIRECT_INODE"
	// EnvDirectHealth is the private address where the preload serves the
	// same app for readiness and health checks: a loopback port, or a Unix
	// socket's path.
	EnvDirectHealth = "PERCORE_DIRECT_HEALTH"
)

// directFD is the descriptor of the first of exec.Cmd's ExtraFiles.
const directFD = 3

// ownListenerError says that a process of a worker in direct mode listens
// on PORT itself instead of the worker serving the public socket it was
// given. Retrying cannot help: the worker is refused.
type ownListenerError struct {
	pid     int    // the process that listens
	leader  bool   // it is the worker's own process, not a child of it
	command string // its command line, "" when unknown
}

// Error implements error.
func (e *ownListenerError) Error() string {
	if e.leader {
		return "the worker listens on PORT itself instead of serving the public socket percore gives it: " +
			"its server does not listen through node:net (node:http and node:http2 servers do; Deno.serve and " +
			"Bun.serve do not), so listen(PORT) is not redirected, or percore's preload was not loaded; use " +
			"--mode proxy"
	}
	who := "pid " + strconv.Itoa(e.pid)
	if e.command != "" {
		who += ": " + e.command
	}
	return "a child process of the worker (" + who + ") listens on PORT instead of the worker serving the " +
		"public socket percore gives it: a wrapper such as npm starts node without passing descriptor 3, the " +
		"socket, on, and a child process cannot take it; run node itself (node server.js), or use --mode proxy"
}

// errNoSocket says that a worker in direct mode never served its socket.
var errNoSocket = errors.New("the app did not take its public socket in time: in --mode direct it must call " +
	"listen(process.env.PORT) on a server of node:net, node:http or node:http2 (in Bun, node:net or node:http2); an " +
	"app that listens elsewhere needs --mode proxy")

// directSetup gives w its slot's public socket: the file to pass as
// descriptor 3 and the variables that tell the preload about it. The port
// in PORT is reserved for the app's redirected listen call; nobody may
// listen on it.
func (s *Supervisor) directSetup(w *worker, health string) (*os.File, []string, error) {
	f, err := s.cfg.Sockets.File(w.slot)
	if err != nil {
		return nil, nil, fmt.Errorf("public socket of worker %d: %w", w.slot, err)
	}
	if w.appPort, err = freePort(); err != nil {
		return nil, nil, err
	}
	w.publicPort = socketPort(f)
	env := []string{EnvDirectFD + "=" + strconv.Itoa(directFD), EnvDirectHealth + "=" + health}
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			env = append(env, EnvDirectInode+"="+strconv.FormatUint(uint64(st.Ino), 10))
		}
	}
	return f, env, nil
}

// directCheck reports an *ownListenerError when a process of a worker in
// direct mode listens on its PORT.
func (w *worker) directCheck() error {
	if w.appPort == 0 {
		return nil
	}
	pid, _ := listenerOn(w.pid, w.appPort)
	if pid == 0 {
		return nil
	}
	return &ownListenerError{pid: pid, leader: pid == w.pid, command: commandLine(pid)}
}

// socketPort returns the local port of the socket f, or 0. It leaves f
// non-blocking, as Fd would not.
func socketPort(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	port := 0
	_ = rc.Control(func(fd uintptr) {
		switch sa, _ := syscall.Getsockname(int(fd)); a := sa.(type) {
		case *syscall.SockaddrInet4:
			port = a.Port
		case *syscall.SockaddrInet6:
			port = a.Port
		}
	})
	return port
}
