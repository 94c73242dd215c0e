//go:build linux

package supervisor

import (
	"strings"
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
