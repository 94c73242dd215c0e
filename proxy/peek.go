package proxy

// peekState is what a look at an idle connection found, without reading it.
type peekState uint8

const (
	// peekIdle: nothing to read; the connection may carry a request.
	peekIdle peekState = iota
	// peekData: bytes arrived that no request asked for.
	peekData
	// peekEnd: the peer closed the connection, or it failed.
	peekEnd
)

// String implements fmt.Stringer.
func (s peekState) String() string {
	switch s {
	case peekIdle:
		return "idle"
	case peekData:
		return "data"
	case peekEnd:
		return "end"
	}
	return "unknown"
}
