// Package control is percore's local control channel: a Unix socket through
// which "percore reload" and "percore scale" reach a running percore, for
// people who cannot easily send it signals (kubectl exec, fly ssh console).
//
// The guards are the socket's directory, which only its owner can enter,
// its file mode (owner only) and, on the command's side, the kernel's word
// on who serves the socket (SO_PEERCRED): a command is sent only to a
// process of the same user or root. The channel is never on the network.
// It is not the admin HTTP listener, which stays read-only.
package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Target is what the control channel acts on; the supervisor implements it.
type Target interface {
	Reload()
	Scale(n int) (int, error)
	ScaleBy(delta int) (int, error)
}

// maxCommand bounds a command line.
const maxCommand = 256

// ErrInUse says another live percore owns the socket.
var ErrInUse = errors.New("control socket is in use by another percore")

// Server answers control commands on a Unix socket.
type Server struct {
	ln   net.Listener
	path string
	log  hclog.Logger
	wg   sync.WaitGroup
	once sync.Once
}

// ListenDefault opens the socket at DefaultPath, creating its directory
// with mode 0700 first; a directory that is not ours alone is an
// *UnsafePathError.
func ListenDefault(log hclog.Logger) (*Server, error) {
	if err := makePrivateDir(DefaultDir(), os.Getuid()); err != nil {
		return nil, err
	}
	return listen(DefaultPath(), log)
}

// Listen opens the socket at path (a --control path), readable and writable
// by its owner only. Its directory must be ours or root's and closed to
// other users' writes; a missing last directory is created with mode 0700.
// A socket of ours left by a dead percore is replaced; a live one is
// ErrInUse. Anything else already at path, or a directory others could
// write to, is an *UnsafePathError.
func Listen(path string, log hclog.Logger) (*Server, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := checkSocketDir(filepath.Dir(abs), os.Getuid()); err != nil {
		return nil, err
	}
	return listen(path, log)
}

func listen(path string, log hclog.Logger) (*Server, error) {
	if err := checkOldSocket(path, os.Getuid()); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &Server{ln: ln, path: path, log: log}, nil
}

// Path is where the socket is.
func (s *Server) Path() string { return s.path }

// Serve accepts commands for target until Stop. It blocks: run it as a
// run.Group actor with Stop as its interrupt.
func (s *Server) Serve(target Target) error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		s.wg.Add(1)
		go s.serveConn(c, target)
	}
}

// Stop closes the socket and removes its file. It is safe to call more
// than once. A percore that became another user after it opened the socket
// may lack the right to remove the file; the next start replaces it.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.ln.Close()
		os.Remove(s.path)
	})
}

func (s *Server) serveConn(c net.Conn, target Target) {
	defer s.wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, maxCommand)).ReadString('\n')
	if err != nil {
		return
	}
	reply := do(target, strings.TrimSpace(line))
	s.log.Info("control command", "command", strings.TrimSpace(line), "reply", reply)
	fmt.Fprintln(c, reply)
}

// do runs one command and returns the reply line: "ok ..." or "error: ...".
func do(target Target, cmd string) string {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "reload":
		target.Reload()
		return "ok reload started"
	case "scale":
		n, err := scale(target, strings.TrimSpace(arg))
		if err != nil {
			return "error: " + err.Error()
		}
		return "ok workers=" + strconv.Itoa(n)
	default:
		return fmt.Sprintf("error: unknown command %q (want reload or scale)", verb)
	}
}

func scale(target Target, arg string) (int, error) {
	delta, relative, n, err := ParseScale(arg)
	if err != nil {
		return 0, err
	}
	if relative {
		return target.ScaleBy(delta)
	}
	return target.Scale(n)
}

// ParseScale reads N, +K or -K.
func ParseScale(arg string) (delta int, relative bool, n int, err error) {
	v, err := strconv.Atoi(arg)
	if err != nil {
		return 0, false, 0, fmt.Errorf("scale %q: want N, +1 or -1", arg)
	}
	if strings.HasPrefix(arg, "+") || strings.HasPrefix(arg, "-") {
		return v, true, 0, nil
	}
	if v < 1 {
		return 0, false, 0, fmt.Errorf("scale %q: at least 1 worker is needed", arg)
	}
	return 0, false, v, nil
}

// Send sends one command to the percore listening at path and returns its
// reply, or an error that says nothing answers there. The process serving
// path must run as our user or root (else a *PeerError, and nothing is
// sent).
func Send(path, command string) (string, error) {
	c, err := dialChecked(path, os.Getuid())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, command); err != nil {
		return "", fmt.Errorf("send %q: %w", command, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read the reply to %q: %w", command, err)
	}
	reply = strings.TrimSpace(reply)
	if msg, ok := strings.CutPrefix(reply, "error: "); ok {
		return "", errors.New(msg)
	}
	return reply, nil
}
