package nodeipc

import "syscall"

// socketpair returns a connected pair of Unix stream sockets, close-on-exec
// so that no other child inherits them.
func socketpair() ([2]int, error) {
	return syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}
