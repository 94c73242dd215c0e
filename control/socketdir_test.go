package control

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// nobody is the uid the tests give to files of "another user".
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user needs the test to run as root")
	}
}

func TestDefaultDir(t *testing.T) {
	uid := os.Getuid()
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	root := "/run/percore"
	if fi, err := os.Stat("/run"); err != nil || !fi.IsDir() {
		root = "/tmp/percore-0"
	}
	other := uid + 1
	cases := []struct {
		name string
		uid  int
		xdg  string
		want string
	}{
		{"XDG_RUNTIME_DIR of ours", uid, private, filepath.Join(private, "percore")},
		{"XDG_RUNTIME_DIR with mode 0755", uid, open, "/tmp/percore-" + strconv.Itoa(uid)},
		{"XDG_RUNTIME_DIR of another user", other, private, "/tmp/percore-" + strconv.Itoa(other)},
		{"relative XDG_RUNTIME_DIR", 1000, "run", "/tmp/percore-1000"},
		{"no XDG_RUNTIME_DIR", 1000, "", "/tmp/percore-1000"},
		{"root without XDG_RUNTIME_DIR", 0, "", root},
	}
	if uid == 0 {
		cases[1].want = root
	}
	for _, c := range cases {
		if got := defaultDir(c.uid, c.xdg, "/tmp"); got != c.want {
			t.Errorf("%s: defaultDir = %s, want %s", c.name, got, c.want)
		}
	}
}

// wantUnsafe checks that err is an *UnsafePathError about path that says problem.
func wantUnsafe(t *testing.T, what string, err error, path, problem string) {
	t.Helper()
	var unsafe *UnsafePathError
	if !errors.As(err, &unsafe) {
		t.Errorf("%s: err = %v, want an *UnsafePathError", what, err)
		return
	}
	if unsafe.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), problem) {
		t.Errorf("%s: err = %q, want one naming %s and saying %q", what, err, path, problem)
	}
}

func TestListenRefusesUnsafePaths(t *testing.T) {
	log := hclog.NewNullLogger()
	base := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}

	open := mkdir("open", 0o777)
	_, err := Listen(filepath.Join(open, "c.sock"), log)
	wantUnsafe(t, "a 0777 directory", err, open, "can be written by other users")

	sticky := mkdir("sticky", 0o777|os.ModeSticky)
	_, err = Listen(filepath.Join(sticky, "c.sock"), log)
	wantUnsafe(t, "a 1777 directory", err, sticky, "can be written by other users")

	groupW := mkdir("group", 0o770)
	_, err = Listen(filepath.Join(groupW, "c.sock"), log)
	wantUnsafe(t, "a 0770 directory", err, groupW, "can be written by other users")

	above := mkdir("above", 0o777)
	inside := filepath.Join(above, "inside")
	if err := os.Mkdir(inside, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(filepath.Join(inside, "c.sock"), log)
	wantUnsafe(t, "a private directory inside a 0777 one", err, above, "can be written by other users")

	good := mkdir("good", 0o755)
	link := filepath.Join(base, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(filepath.Join(link, "c.sock"), log)
	wantUnsafe(t, "a symbolic link", err, link, "is a symbolic link")

	file := filepath.Join(good, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(file, log)
	wantUnsafe(t, "a regular file at the socket path", err, file, "is not a socket")
	if data, _ := os.ReadFile(file); string(data) != "keep me" {
		t.Error("the regular file at the socket path was touched")
	}
	_, err = Listen(filepath.Join(file, "c.sock"), log)
	wantUnsafe(t, "a file as the directory", err, file, "is not a directory")

	s, err := Listen(filepath.Join(good, "c.sock"), log)
	if err != nil {
		t.Fatalf("a 0755 directory of ours: %v", err)
	}
	s.Stop()
	s, err = Listen(filepath.Join(good, "new", "c.sock"), log)
	if err != nil {
		t.Fatalf("a missing last directory: %v", err)
	}
	s.Stop()
	if fi, err := os.Lstat(filepath.Join(good, "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the created directory: %v %v, want mode 0700", fi.Mode(), err)
	}
}

func TestListenRefusesPathsOfAnotherUser(t *testing.T) {
	needRoot(t)
	log := hclog.NewNullLogger()
	base := t.TempDir()
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(theirs, "c.sock"), log)
	wantUnsafe(t, "a directory of another user", err, theirs, "is owned by uid 65534")

	sock := filepath.Join(base, "their.sock")
	staleSocket(t, sock)
	if err := os.Chown(sock, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(sock, log)
	wantUnsafe(t, "a socket of another user", err, sock, "is a socket owned by uid 65534")
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the other user's socket was removed: %v", err)
	}
}

// Without abstract sockets, the default control socket is NAME.sock in a
// directory only its owner can enter.
func TestFileFallbackMakesAPrivateDirectory(t *testing.T) {
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	dir := filepath.Join(xdg, "percore")
	path := filepath.Join(dir, "127.0.0.1:8080.sock")
	if got := FileAddr("127.0.0.1:8080"); got != path {
		t.Fatalf("FileAddr = %s, want %s", got, path)
	}
	s, err := listenInstance("127.0.0.1:8080", false, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("socket at %s, want %s", s.Path(), path)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("control socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
	s.Stop()
	if fi, err := os.Lstat(dir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("default directory: %v %v, want a directory with mode 0700", fi.Mode(), err)
	}

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = listenInstance("8080", false, hclog.NewNullLogger())
	wantUnsafe(t, "a default directory with mode 0755", err, dir, "has mode 0755, want 0700")

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, dir); err != nil {
		t.Fatal(err)
	}
	_, err = listenInstance("8080", false, hclog.NewNullLogger())
	wantUnsafe(t, "a default directory that is a symbolic link", err, dir, "is a symbolic link")
}

func TestFileFallbackRefusesADirectoryOfAnotherUser(t *testing.T) {
	needRoot(t)
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	dir := filepath.Join(xdg, "percore")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := listenInstance("8080", false, hclog.NewNullLogger())
	wantUnsafe(t, "a default directory of another user", err, dir, "is owned by uid 65534, not by uid 0")
}

// staleSocket leaves a socket file at path with nothing listening, as a
// percore that crashed does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}
