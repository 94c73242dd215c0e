package control

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestPeerOfNamesTheServer reads SO_PEERCRED on a real connection: the
// server is this test process.
func TestPeerOfNamesTheServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	s, err := Listen(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := dialChecked(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := peerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.UID != os.Getuid() {
		t.Errorf("peer = %+v, want pid %d uid %d", p, os.Getpid(), os.Getuid())
	}
}
