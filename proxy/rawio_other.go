//go:build !linux

package proxy

import (
	"bufio"
	"net"
)

// withRawIO returns c: raw reads and writes are used on Linux only.
func withRawIO(c net.Conn) net.Conn { return c }

// connIdle reports whether nothing can be read from c now. On this system
// it cannot tell, and says so; a response's own framing still decides
// whether its connection is reused.
func connIdle(net.Conn) bool { return true }

// connPeek tells what could be read from c now. On this system it cannot
// tell, and says idle.
func connPeek(net.Conn) peekState { return peekIdle }

// rawIOListener accepts connections as they are on this system.
type rawIOListener struct{ net.Listener }

// flushBeforeRead flushes bw, which writes to c, when c is about to be read
// for an answer.
func flushBeforeRead(bw *bufio.Writer, _ net.Conn) error { return bw.Flush() }
