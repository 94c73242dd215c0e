package control

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestInstanceName(t *testing.T) {
	cases := []struct{ host, port, want, wantPort string }{
		{"", "8080", "8080", "8080"},
		{"127.0.0.1", "8080", "127.0.0.1:8080", "8080"},
		{"::1", "3000", "[::1]:3000", "3000"},
		{"localhost", "80", "localhost:80", "80"},
	}
	for _, c := range cases {
		name := InstanceName(c.host, c.port)
		if name != c.want {
			t.Errorf("InstanceName(%q, %q) = %q, want %q", c.host, c.port, name, c.want)
		}
		if p := (Socket{Name: name}).Port(); p != c.wantPort {
			t.Errorf("Socket{%q}.Port() = %q, want %q", name, p, c.wantPort)
		}
	}
}

// TestSocketsFindsFiles lists the socket files that answer in DefaultDir,
// and leaves out a stale socket and other files.
func TestSocketsFindsFiles(t *testing.T) {
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	s, err := listenInstance("127.0.0.1:4000", false, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	dir := filepath.Join(xdg, "percore")
	staleSocket(t, filepath.Join(dir, "4001.sock"))
	if err := os.WriteFile(filepath.Join(dir, "4002.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := Sockets()
	if err != nil {
		t.Fatal(err)
	}
	var files []Socket
	for _, f := range found {
		if !strings.HasPrefix(f.Addr, "@") {
			files = append(files, f)
		}
	}
	want := []Socket{{Name: "127.0.0.1:4000", Addr: filepath.Join(dir, "127.0.0.1:4000.sock")}}
	if !slices.Equal(files, want) {
		t.Errorf("socket files = %v, want %v", files, want)
	}
}

func TestAbstractNames(t *testing.T) {
	const procNetUnix = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 1001 @percore/8080
0000000000000000: 00000003 00000000 00000000 0001 03 1002 @percore/8080
0000000000000000: 00000002 00000000 00010000 0001 01 1003 @percore/127.0.0.1:3000
0000000000000000: 00000003 00000000 00000000 0001 03 1004 @percore/[::1]:3001
0000000000000000: 00000002 00000000 00010000 0001 01 1005 @percore/padded@@@@@@@@
0000000000000000: 00000002 00000000 00010000 0001 01 1006 @other/8080
0000000000000000: 00000002 00000000 00010000 0001 01 1007 /run/percore/9090.sock
0000000000000000: 00000002 00000000 00010000 0005 01 1008
0000000000000000: 00000002 00000000 00010000 0001 01 1009 @percore/
0000000000000000: 00000002 00000000 00010000 0001 01 1010 @percore/with space
0000000000000000: 00000002 00000000 00010000 0001 01 1011 @percore/<ESC>]52;c;aGk=<BEL>
0000000000000000: 00000002 00000000 00010000 0001 01 1012 @percore/localhost:80
0000000000000000: 00000002 00000000 00010000 0001 01 1013 @percore/[fe80::1%eth0]:80
`
	got, err := abstractNames(strings.NewReader(strings.NewReplacer("<ESC>", "\x1b", "<BEL>", "\a").Replace(procNetUnix)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"8080", "127.0.0.1:3000", "localhost:80", "[fe80::1%eth0]:80"}
	if !slices.Equal(got, want) {
		t.Errorf("abstractNames = %q, want %q", got, want)
	}
}

// A dialled file socket reports the server; the server is this process.
func TestTakenErrorNamesTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	err = takenError(path, c)
	te, ok := err.(*TakenError)
	if !ok || te.Peer.PID != os.Getpid() || te.Foreign() || !strings.Contains(err.Error(), "another percore") {
		t.Errorf("takenError = %v, want one naming this process as a percore of ours", err)
	}
	foreign := &TakenError{Addr: "@percore/8080", Peer: Peer{PID: 42, UID: 65534}, UID: 0}
	for _, want := range []string{"@percore/8080", "pid 42", "uid 65534", "not by root", "will not share"} {
		if !strings.Contains(foreign.Error(), want) {
			t.Errorf("%q does not say %q", foreign.Error(), want)
		}
	}
}
