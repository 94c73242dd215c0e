//go:build linux

package supervisor

import (
	"net"
	"strings"
	"syscall"
	"testing"
)

// A worker that listens on its port beyond loopback (as many frameworks do,
// whatever HOST says) is named in a warning with the address it bound; one
// on loopback is not.
func TestWorkerListeningBeyondLoopbackIsWarnedAbout(t *testing.T) {
	for _, c := range []struct {
		host string
		warn bool
	}{{"0.0.0.0", true}, {"::", true}, {"127.0.0.1", false}} {
		t.Run(c.host, func(t *testing.T) {
			rig := newRig(t, "serve", 1, nil, "FAKE_HOST="+c.host)
			addr := rig.waitAdded(t)
			_, port, _ := strings.Cut(addr, ":")
			log := rig.log.String()
			warned := strings.Contains(log, "worker listens beyond loopback")
			if warned != c.warn {
				t.Fatalf("listening on %s: warned %v, want %v; log:\n%s", c.host, warned, c.warn, log)
			}
			if c.warn && !strings.Contains(log, ":"+port) {
				t.Errorf("the warning does not name the address it found: %s", log)
			}
		})
	}
}

func TestProcAddr(t *testing.T) {
	for hex, want := range map[string]string{
		"0100007F":                         "127.0.0.1",
		"00000000":                         "0.0.0.0",
		"0502000A":                         "10.0.2.5",
		"00000000000000000000000000000000": "::",
		"00000000000000000000000001000000": "::1",
		"0000000000000000FFFF00000100007F": "127.0.0.1",
	} {
		if got := procAddr(hex); got != want {
			t.Errorf("procAddr(%s) = %s, want %s", hex, got, want)
		}
		if procLoopback(hex) != strings.HasPrefix(want, "127.") && want != "::1" {
			t.Errorf("procLoopback(%s) = %v", hex, procLoopback(hex))
		}
	}
}

// connsOn counts the connections a process group accepted on a port, as a
// stop in direct mode reports them, and socketPort finds that port from
// the listening socket's file.
func TestConnsOnCountsAcceptedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	port := socketPort(f)
	if port != ln.Addr().(*net.TCPAddr).Port {
		t.Fatalf("socketPort = %d, want %d", port, ln.Addr().(*net.TCPAddr).Port)
	}
	pgid := syscall.Getpgrp()
	if n := connsOn(pgid, port); n != 0 {
		t.Errorf("connsOn before any connection = %d", n)
	}
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	// The dialled ends are this group's too, but their local ports differ.
	if n := connsOn(pgid, port); n != 2 {
		t.Errorf("connsOn with 2 accepted connections = %d, want 2", n)
	}
	if n := connsOn(pgid, 0); n != 0 {
		t.Errorf("connsOn of port 0 = %d, want 0", n)
	}
}
