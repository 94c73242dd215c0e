// Package control is percore's local control channel: a Unix socket through
// which "percore reload" and "percore scale" reach a running percore, for
// people who cannot easily send it signals (kubectl exec, fly ssh console).
//
// The socket's file permissions are the guard (owner only); the channel is
// never on the network. It is not the admin HTTP listener, which stays
// read-only.
package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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

// DefaultPath is where the socket lives unless --control says otherwise.
func DefaultPath() string {
	return fmt.Sprintf("%s/percore-%d.sock", os.TempDir(), os.Getuid())
}

// maxCommand bounds a command line.
const maxCommand = 256

// ErrInUse says another live percore owns the socket.
var ErrInUse = errors.New("control socket is in use by another percore")

// Server answers control commands on a Unix socket.
type Server struct {
	ln     net.Listener
	path   string
	target Target
	log    hclog.Logger
	wg     sync.WaitGroup
	once   sync.Once
}

// Listen creates the socket at path, readable and writable by its owner
// only. A stale socket left by a dead percore is replaced; a live one is
// ErrInUse.
func Listen(path string, target Target, log hclog.Logger) (*Server, error) {
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
	return &Server{ln: ln, path: path, target: target, log: log}, nil
}

// Run accepts commands until Stop; it is a run.Group actor.
func (s *Server) Run() error {
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
		go s.serveConn(c)
	}
}

// Stop closes the socket and removes its file.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.ln.Close()
		os.Remove(s.path)
	})
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, maxCommand)).ReadString('\n')
	if err != nil {
		return
	}
	reply := s.do(strings.TrimSpace(line))
	s.log.Info("control command", "command", strings.TrimSpace(line), "reply", reply)
	fmt.Fprintln(c, reply)
}

// do runs one command and returns the reply line: "ok ..." or "error: ...".
func (s *Server) do(cmd string) string {
	verb, arg, _ := strings.Cut(cmd, " ")
	switch verb {
	case "reload":
		s.target.Reload()
		return "ok reload started"
	case "scale":
		n, err := s.scale(strings.TrimSpace(arg))
		if err != nil {
			return "error: " + err.Error()
		}
		return "ok workers=" + strconv.Itoa(n)
	default:
		return fmt.Sprintf("error: unknown command %q (want reload or scale)", verb)
	}
}

func (s *Server) scale(arg string) (int, error) {
	delta, relative, n, err := ParseScale(arg)
	if err != nil {
		return 0, err
	}
	if relative {
		return s.target.ScaleBy(delta)
	}
	return s.target.Scale(n)
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
// reply, or an error that says nothing answers there.
func Send(path, command string) (string, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("no percore answers on %s (is it running, and is this its --control path?): %w", path, err)
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
