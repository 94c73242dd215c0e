// Package control is percore's local control channel: a Unix socket through
// which "percore reload" and "percore scale" reach a running percore, for
// people who cannot easily send it signals (kubectl exec, fly ssh console).
//
// Each percore's socket is its own, named after its public address (see
// InstanceName): on Linux an abstract socket, @percore/NAME, which needs no
// writable directory (a read-only root) and vanishes with its process;
// elsewhere, or where the kernel refuses that, NAME.sock in DefaultDir; or
// the path given with --control. Sockets lists the ones running.
//
// The guards are the kernel's word on who is at the other end
// (SO_PEERCRED), both ways: percore takes commands only from its own user
// (the one that opened the socket) or root, and a command is sent only to
// a process of the same user or root; for a file, also its directory,
// which only its owner can enter, and its mode (owner only). The channel
// is never on the network. It is not the admin HTTP listener, which stays
// read-only.
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
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Target is what the control channel acts on; the supervisor implements it.
type Target interface {
	Reload()
	Scale(n int) (int, error)
	ScaleBy(delta int) (int, error)
}

// Info is what the info command tells about the percore behind a control
// socket, so that "percore status" can find its admin listener.
type Info struct {
	PID    int    // percore's pid
	Public string // the public address it listens on
	Admin  string // its admin listener's address; "" when off
}

// maxCommand bounds a command line.
const maxCommand = 256

// ErrInUse says another live process holds the socket; see TakenError.
var ErrInUse = errors.New("control socket is in use")

// Server answers control commands on a Unix socket. Only its owner's uid
// (the user percore was when it opened the socket) and root may send them.
type Server struct {
	ln    net.Listener
	addr  string // the path, or @name for an abstract socket
	owner int    // the uid that may send commands, besides root
	log   hclog.Logger
	wg    sync.WaitGroup
	once  sync.Once
}

// Listen opens the socket at path (a --control path): a file, readable
// and writable by its owner only, or on Linux, for a path that starts with
// @, the abstract socket of that name. A file's directory must be ours or
// root's and closed to other users' writes; a missing last directory is
// created with mode 0700. A socket of ours left by a dead percore is
// replaced; a live one, or an abstract name already bound, is a
// *TakenError. Anything else already at path, or a directory others could
// write to, is an *UnsafePathError.
func Listen(path string, log hclog.Logger) (*Server, error) {
	if strings.HasPrefix(path, "@") {
		return listenAbstract(path, log)
	}
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
		return nil, takenError(path, c)
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
	return newServer(ln, path, log), nil
}

// listenAbstract binds the abstract socket addr (@name). An abstract name
// has no owner and no mode: whoever binds it first has it, so a name
// already bound is a *TakenError naming the holder, never shared.
func listenAbstract(addr string, log hclog.Logger) (*Server, error) {
	if !abstractOK {
		return nil, fmt.Errorf("control socket %s: abstract sockets (a name that starts with @) need Linux; give a path", addr)
	}
	ln, err := net.Listen("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		c, dialErr := net.DialTimeout("unix", addr, time.Second)
		if dialErr != nil {
			return nil, &TakenError{Addr: addr, Peer: Peer{UID: -1}, UID: os.Getuid()}
		}
		return nil, takenError(addr, c)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", addr, err)
	}
	return newServer(ln, addr, log), nil
}

func newServer(ln net.Listener, addr string, log hclog.Logger) *Server {
	return &Server{ln: ln, addr: addr, owner: os.Getuid(), log: log}
}

// Path is where the socket is: a path, or @name for an abstract socket.
func (s *Server) Path() string { return s.addr }

// Serve accepts commands for target until Stop; the info command reports
// info, with percore's pid. It blocks: run it as a run.Group actor with
// Stop as its interrupt.
func (s *Server) Serve(target Target, info Info) error {
	info.PID = os.Getpid()
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
		go s.serveConn(c, target, info)
	}
}

// Stop closes the socket and removes its file. It is safe to call more
// than once. A percore that became another user after it opened the socket
// may lack the right to remove the file; the next start replaces it.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.ln.Close()
		if !strings.HasPrefix(s.addr, "@") {
			os.Remove(s.addr)
		}
	})
}

func (s *Server) serveConn(c net.Conn, target Target, info Info) {
	defer s.wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, maxCommand)).ReadString('\n')
	if err != nil {
		return
	}
	cmd := strings.TrimSpace(line)
	// The command is read first, so that the refusal reaches the client
	// before the close, and is then checked before anything is done.
	if err := s.checkClient(c); err != nil {
		s.log.Warn("refused a control command", "command", cmd, "error", err)
		fmt.Fprintln(c, "error: "+err.Error())
		return
	}
	reply := do(target, info, cmd)
	if cmd == "info" { // asked by percore status and top: no news
		s.log.Debug("control command", "command", cmd, "reply", reply)
	} else {
		s.log.Info("control command", "command", cmd, "reply", reply)
	}
	fmt.Fprintln(c, reply)
}

// checkClient asks the kernel who connected (SO_PEERCRED) and accepts the
// socket's owner and root only: an abstract socket has no file mode to
// keep others out, and any local user can connect to it.
func (s *Server) checkClient(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("refused: not a Unix socket connection")
	}
	p, err := peerOf(uc)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if p.UID == s.owner || p.UID == 0 {
		return nil
	}
	return &ClientError{Peer: p, Owner: s.owner}
}

// do runs one command and returns the reply line: "ok ..." or "error: ...".
func do(target Target, info Info, cmd string) string {
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
	case "info":
		return "ok " + info.String()
	default:
		return fmt.Sprintf("error: unknown command %q (want reload, scale or info)", verb)
	}
}

// String is the info command's reply without its "ok": key=value words,
// admin left out when off.
func (i Info) String() string {
	s := fmt.Sprintf("pid=%d public=%s", i.PID, i.Public)
	if i.Admin != "" {
		s += " admin=" + i.Admin
	}
	return s
}

// parseInfo reads a reply to the info command.
func parseInfo(reply string) (Info, error) {
	var info Info
	rest, ok := strings.CutPrefix(reply, "ok ")
	if !ok {
		return info, fmt.Errorf("info: unexpected reply %q", reply)
	}
	for _, word := range strings.Fields(rest) {
		key, value, _ := strings.Cut(word, "=")
		switch key {
		case "pid":
			info.PID, _ = strconv.Atoi(value)
		case "public":
			info.Public = value
		case "admin":
			info.Admin = value
		}
	}
	if info.PID <= 0 {
		return info, fmt.Errorf("info: no pid in the reply %q", reply)
	}
	return info, nil
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

// Send sends one command to the percore listening at path (a file, or
// @name for an abstract socket) and returns its reply, or a *NoAnswerError
// when nothing answers there. The process serving path must run as our
// user or root (else a *PeerError, and nothing is sent).
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

// Ask asks the percore listening at path who it is (the info command),
// with Send's checks.
func Ask(path string) (Info, error) {
	reply, err := Send(path, "info")
	if err != nil {
		return Info{}, err
	}
	return parseInfo(reply)
}
