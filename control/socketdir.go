package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// UnsafePathError says a control socket path, its directory or a file
// already there is not under the control of percore's user: another local
// user could take the socket's place and answer percore reload and scale.
type UnsafePathError struct {
	Path    string // the file or directory at fault
	Problem string // what is wrong with it, e.g. "is owned by uid 65534"
}

// Error implements error.
func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("unsafe control socket path: %s %s", e.Path, e.Problem)
}

// DefaultDir is the directory of the control socket files (see FileAddr):
// $XDG_RUNTIME_DIR/percore when $XDG_RUNTIME_DIR is set and is ours with
// mode 0700, /run/percore for root, else percore-UID in the temporary
// directory ($TMPDIR or /tmp). ListenInstance creates it with mode 0700
// and refuses it when it is not ours.
func DefaultDir() string {
	return defaultDir(os.Getuid(), os.Getenv("XDG_RUNTIME_DIR"), os.TempDir())
}

func defaultDir(uid int, xdg, tmp string) string {
	if xdg != "" && filepath.IsAbs(xdg) && checkPrivateDir(xdg, uid) == nil {
		return filepath.Join(xdg, "percore")
	}
	if uid == 0 {
		if fi, err := os.Stat("/run"); err == nil && fi.IsDir() {
			return "/run/percore"
		}
	}
	return filepath.Join(tmp, "percore-"+strconv.Itoa(uid))
}

// makePrivateDir creates dir with mode 0700 unless it exists, then checks
// that it is ours alone.
func makePrivateDir(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create control socket directory %s: %w", dir, err)
	}
	return checkPrivateDir(dir, uid)
}

// checkPrivateDir accepts only a real directory (not a symbolic link) owned
// by uid with mode 0700: what makePrivateDir creates.
func checkPrivateDir(dir string, uid int) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check control socket directory: %w", err)
	}
	if err := checkIsDir(dir, fi); err != nil {
		return err
	}
	if owner := ownerOf(fi); owner != uid {
		return &UnsafePathError{Path: dir, Problem: fmt.Sprintf("is owned by uid %d, not by uid %d", owner, uid)}
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		return &UnsafePathError{Path: dir, Problem: fmt.Sprintf("has mode %#o, want 0700", perm)}
	}
	return nil
}

// checkSocketDir accepts the directory of a socket path given with
// --control: a real directory (not a symbolic link), owned by uid or root,
// that no other user can write to; and above it, directories owned by uid or
// root that other users cannot write to, or only with the sticky bit (/tmp),
// so that none can rename it away. A missing last directory is created
// with mode 0700.
func checkSocketDir(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create control socket directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check control socket directory: %w", err)
	}
	if err := checkIsDir(dir, fi); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("check control socket directory: %w", err)
	}
	for d, last := real, true; ; d, last = filepath.Dir(d), false {
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("check control socket directory: %w", err)
		}
		if owner := ownerOf(fi); owner != uid && owner != 0 {
			return &UnsafePathError{Path: d, Problem: fmt.Sprintf("is owned by uid %d, not by %s", owner, usOrRoot(uid))}
		}
		shared := fi.Mode().Perm()&0o022 != 0
		if shared && (last || fi.Mode()&fs.ModeSticky == 0) {
			return &UnsafePathError{Path: d, Problem: fmt.Sprintf("can be written by other users (mode %#o); use a directory only its owner can write to", fi.Mode().Perm())}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func checkIsDir(dir string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &UnsafePathError{Path: dir, Problem: "is a symbolic link; give the directory it points to"}
	}
	if !fi.IsDir() {
		return &UnsafePathError{Path: dir, Problem: "is not a directory"}
	}
	return nil
}

// checkOldSocket accepts a path where nothing is yet, or a socket of uid's
// own (perhaps left by a percore that died), which Listen then replaces.
func checkOldSocket(path string, uid int) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return &UnsafePathError{Path: path, Problem: "exists and is not a socket"}
	}
	if owner := ownerOf(fi); owner != uid {
		return &UnsafePathError{Path: path, Problem: fmt.Sprintf("is a socket owned by uid %d, not by uid %d", owner, uid)}
	}
	return nil
}
