//go:build unix

package control

import (
	"io/fs"
	"syscall"
)

// ownerOf is the uid that owns a file; -1 when the system does not say.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
