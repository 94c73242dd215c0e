// Package nodeipc is percore's end of Node's IPC channel to one node
// process: the channel child_process.fork() opens, which node opens at
// start when NODE_CHANNEL_FD names a descriptor (JSON lines over a Unix
// stream socket, descriptors passed with SCM_RIGHTS). percore uses it for
// one thing: to pass an accepted TCP connection to the process, the way
// Node's cluster module passes handles, so that the app sees the client's
// own address.
//
// Percore speaks the part of Node's protocol (lib/internal/child_process.js,
// setupChannel) that passing a socket needs: a NODE_HANDLE message of type
// net.Socket, sent with its descriptor, answered by NODE_HANDLE_ACK (taken)
// or NODE_HANDLE_NACK (the descriptor did not arrive: sent again, up to three
// times), one handle at a time. The message inside has a cmd starting with
// NODE_, so node emits it as 'internalMessage', where the preload takes it;
// the app's 'message' listeners never see it. Whatever else the process
// sends (an app's process.send('ready')) is read and ignored.
//
// It is not a general IPC client: it sends nothing but handles and answers,
// and the preload tells it when the process takes connections (Ready).
package nodeipc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The messages of the preload (jsruntime's node_direct.js) and percore's.
const (
	// cmdConnection is the cmd of the message a passed connection comes
	// with; node emits it as 'internalMessage' for its NODE_ prefix.
	cmdConnection = "NODE_PERCORE_CONNECTION"
	// cmdReady says the process hands passed connections to its server.
	cmdReady = "NODE_PERCORE_READY"
	// cmdClosed says the server closed: it takes no more.
	cmdClosed = "NODE_PERCORE_CLOSED"

	cmdHandle = "NODE_HANDLE"
	cmdAck    = "NODE_HANDLE_ACK"
	cmdNack   = "NODE_HANDLE_NACK"
)

// maxRetransmissions is how many times a refused handle is sent again, as
// node's MAX_HANDLE_RETRANSMISSIONS.
const maxRetransmissions = 3

// maxLine bounds a line percore keeps to read its cmd; longer lines, which
// can only be the app's own messages, are skipped.
const maxLine = 64 << 10

var (
	// ErrNotReady says the process does not take connections now: it has
	// not said it does, its server closed, or it left a handle unanswered.
	ErrNotReady = errors.New("the process takes no passed connection now")
	// ErrRefused says the process answered NODE_HANDLE_NACK to every
	// attempt: the descriptor never reached it, the connection is still
	// the caller's alone.
	ErrRefused = errors.New("the process did not receive the connection")
	// ErrNoAnswer says the handle was sent but no answer came in time (or
	// the channel ended first): the process may still take it.
	ErrNoAnswer = errors.New("the process did not answer for a passed connection")
	// ErrClosed says the channel is closed.
	ErrClosed = errors.New("channel closed")
)

// Env returns the variables that make node open the channel at descriptor
// fd of its own: NODE_CHANNEL_FD, and JSON serialization (the default,
// named so that an inherited NODE_CHANNEL_SERIALIZATION_MODE is overridden).
// Node deletes both from process.env at start, so the app's own child
// processes do not inherit them.
func Env(fd int) []string {
	return []string{"NODE_CHANNEL_FD=" + strconv.Itoa(fd), "NODE_CHANNEL_SERIALIZATION_MODE=json"}
}

// Channel is percore's end of one node process's IPC channel. Create it
// with Open; it is safe for concurrent use. Its one goroutine reads what the
// process sends; Close stops it.
type Channel struct {
	conn     *net.UnixConn
	onChange func()
	done     chan struct{} // closed when the reader ended
	once     sync.Once

	passMu sync.Mutex // one handle in flight, as node's own sender
	wmu    sync.Mutex // serialises writes: Pass's and the reader's answers

	mu      sync.Mutex // protects the fields below
	ready   bool       // the process said it takes connections
	closed  bool       // its server closed, or the channel ended
	stalled bool       // a handle left unanswered; cleared by a late answer
	waiting chan bool  // the pending Pass's answer: true for ACK
	late    uint64     // answers that came after Pass gave up
}

// Open makes a new channel. It returns percore's end and the process's,
// which the caller passes to the process (exec.Cmd.ExtraFiles) with Env's
// variables, then closes. onChange, when set, is called from the reader
// whenever Passable may have changed, and once Done is closed; it must not
// call Close.
func Open(onChange func()) (*Channel, *os.File, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, nil, fmt.Errorf("node IPC channel: %w", os.NewSyscallError("socketpair", err))
	}
	ours := os.NewFile(uintptr(fds[0]), "percore-ipc")
	theirs := os.NewFile(uintptr(fds[1]), "node-ipc")
	fc, err := net.FileConn(ours) // a descriptor of its own, in the poller
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("node IPC channel: %w", err)
	}
	if onChange == nil {
		onChange = func() {}
	}
	c := &Channel{conn: fc.(*net.UnixConn), onChange: onChange, done: make(chan struct{})}
	go c.read()
	return c, theirs, nil
}

// Ready returns whether the process said it hands passed connections to
// its server (and has not said since that the server closed).
func (c *Channel) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready && !c.closed
}

// Passable returns whether Pass may pass a connection now: the process is
// Ready and answered every handle it was sent.
func (c *Channel) Passable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready && !c.closed && !c.stalled
}

// Late returns how many handles the process took after Pass had given up
// waiting (ErrNoAnswer).
func (c *Channel) Late() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.late
}

// Done is closed once the channel ended: the process closed its end (it
// exited), or Close was called.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Pass passes conn's descriptor to the process and waits up to wait for
// its answer. nil means the process took it: the caller closes its own
// copy, which leaves the connection open in the process. ErrNotReady,
// ErrRefused and errors writing mean the process does not have it: the
// caller may pass it elsewhere. ErrNoAnswer means it was sent but not
// answered: it must not be passed elsewhere, and the channel takes no more
// until the answer comes.
func (c *Channel) Pass(conn syscall.Conn, wait time.Duration) error {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	answer := make(chan bool, 1)
	c.mu.Lock()
	if !c.ready || c.closed || c.stalled {
		c.mu.Unlock()
		return ErrNotReady
	}
	c.waiting = answer
	c.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for attempt := 0; ; attempt++ {
		if err := c.sendHandle(conn, wait); err != nil {
			c.forget(answer)
			return err
		}
		select {
		case ok := <-answer:
			if ok {
				return nil
			}
			if attempt == maxRetransmissions {
				return ErrRefused
			}
			c.mu.Lock()
			c.waiting = answer
			c.mu.Unlock()
		case <-timer.C:
			return c.giveUp(answer)
		case <-c.done:
			return c.giveUp(answer)
		}
	}
}

// forget drops the wait for answer after a failed write.
func (c *Channel) forget(answer chan bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == answer {
		c.waiting = nil
	}
}

// giveUp stops waiting for the answer of a handle sent; one that came
// meanwhile counts.
func (c *Channel) giveUp(answer chan bool) error {
	c.mu.Lock()
	if c.waiting == answer {
		c.waiting = nil
		c.stalled = true
		c.mu.Unlock()
		return ErrNoAnswer
	}
	c.mu.Unlock()
	if ok := <-answer; ok { // the reader answered and cleared waiting
		return nil
	}
	return ErrRefused
}

// handleMessage is the line a passed connection comes with: no key, so
// node tracks the socket in no list and sends nothing back when it closes.
var handleMessage = []byte(`{"cmd":"` + cmdHandle + `","type":"net.Socket","msg":{"cmd":"` + cmdConnection + `"}}` + "\n")

// sendHandle writes the handle message with conn's descriptor.
func (c *Channel) sendHandle(conn syscall.Conn, wait time.Duration) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("pass a connection: %w", err)
	}
	var werr error
	err = raw.Control(func(fd uintptr) {
		werr = c.write(handleMessage, syscall.UnixRights(int(fd)), wait)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("pass a connection: %w", err)
	}
	return nil
}

// write writes b, with oob on its first byte, within wait.
func (c *Channel) write(b, oob []byte, wait time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	n, _, err := c.conn.WriteMsgUnix(b, oob, nil)
	if err == nil && n < len(b) { // a stream socket may take part: the descriptor went with the first byte
		_, err = c.conn.Write(b[n:])
	}
	return err
}

// Close closes percore's end and waits for the reader to end. The process
// sees its channel disconnect.
func (c *Channel) Close() error {
	var err error
	c.once.Do(func() { err = c.conn.Close() })
	<-c.done
	return err
}

// read is the channel's reader: it takes the answers to handles and the
// preload's messages, and ignores the app's. It ends when the process
// closes its end or Close closes ours.
func (c *Channel) read() {
	defer func() {
		c.end()
		close(c.done)
		c.onChange()
	}()
	buf := make([]byte, 32<<10)
	oob := make([]byte, syscall.CmsgSpace(16*4))
	var line []byte
	skipping := false
	for {
		n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
		n = max(n, 0) // -1 with some errors
		if oobn > 0 {
			c.closeRights(oob[:oobn])
		}
		for rest := buf[:n]; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				if !skipping && len(line)+len(rest) <= maxLine {
					line = append(line, rest...)
				} else {
					skipping, line = true, line[:0]
				}
				break
			}
			if !skipping {
				c.handle(append(line, rest[:i]...))
			}
			skipping, line, rest = false, line[:0], rest[i+1:]
		}
		if err != nil {
			return
		}
	}
}

// end marks the channel ended, whatever the process said.
func (c *Channel) end() {
	c.once.Do(func() { c.conn.Close() })
	c.mu.Lock()
	c.closed = true // a pending Pass sees done and gives up
	c.mu.Unlock()
}

// closeRights closes the descriptors the process sent (an app's
// process.send(message, handle)): percore keeps none.
func (c *Channel) closeRights(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
}

// handle takes one line the process sent.
func (c *Channel) handle(line []byte) {
	if !bytes.Contains(line, []byte(`"NODE_`)) {
		return // the app's own message
	}
	var m struct {
		Cmd string `json:"cmd"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch m.Cmd {
	case cmdAck, cmdNack:
		c.answer(m.Cmd == cmdAck)
	case cmdReady, cmdClosed:
		c.mu.Lock()
		c.ready = m.Cmd == cmdReady
		c.mu.Unlock()
		c.onChange()
	case cmdHandle:
		// The app passed percore a handle, whose descriptor closeRights
		// closed: acknowledge it, so that the process's queue moves on.
		c.write([]byte(`{"cmd":"`+cmdAck+`"}`+"\n"), nil, time.Second)
	}
}

// answer gives an ACK (ok) or NACK to the pending Pass; an ACK that comes
// after Pass gave up lifts the stall.
func (c *Channel) answer(ok bool) {
	c.mu.Lock()
	if w := c.waiting; w != nil {
		c.waiting = nil
		c.mu.Unlock()
		w <- ok
		return
	}
	lifted := c.stalled
	if lifted {
		c.stalled = false
		if ok {
			c.late++
		}
	}
	c.mu.Unlock()
	if lifted {
		c.onChange()
	}
}
