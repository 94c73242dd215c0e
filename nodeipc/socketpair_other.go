//go:build unix && !linux

package nodeipc

import "syscall"

// socketpair returns a connected pair of Unix stream sockets, close-on-exec
// so that no other child inherits them (under ForkLock, without
// SOCK_CLOEXEC).
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}
