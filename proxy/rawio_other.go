//go:build !linux

package proxy

import "net"

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
