//go:build linux

package direct

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// attachSteering sets prog as the socket-selection program of the
// SO_REUSEPORT group that f belongs to.
func attachSteering(f *os.File, prog []sockFilter) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.code, Jt: in.jt, Jf: in.jf, K: in.k}
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("steer new connections: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("steer new connections: attach the selection program: %w", err)
	}
	return nil
}
