package machine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// reader reads root-relative files and collects the notes detection leaves.
type reader struct {
	root  string
	notes []string
}

// path turns a root-relative slash path into a host path below the root.
func (rd *reader) path(p string) string {
	return filepath.Join(rd.root, filepath.FromSlash(p))
}

// read returns the trimmed contents of a root-relative file.
func (rd *reader) read(p string) (string, error) {
	b, err := os.ReadFile(rd.path(p))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readOptional reads a file that may legitimately be absent. It reports
// found=false without a note when the file does not exist, and adds a note
// for any other failure.
func (rd *reader) readOptional(p string) (string, bool) {
	s, err := rd.read(p)
	if err == nil {
		return s, true
	}
	if !errors.Is(err, fs.ErrNotExist) {
		rd.note("%v", err)
	}
	return "", false
}

// isDir reports whether a root-relative path is a directory.
func (rd *reader) isDir(p string) bool {
	fi, err := os.Stat(rd.path(p))
	return err == nil && fi.IsDir()
}

// note records something worth a log line, once.
func (rd *reader) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	for _, x := range rd.notes {
		if x == n {
			return
		}
	}
	rd.notes = append(rd.notes, n)
}
