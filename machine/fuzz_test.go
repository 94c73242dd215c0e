package machine

import (
	"math/big"
	"strings"
	"testing"
)

func FuzzParseCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000", "max", "50000 100000", "150000 100000\n", "400000", "", "x y", "-1 100000", "9223372036854775807 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, limited, err := parseCPUMax(s)
		if err != nil && limited {
			t.Fatalf("parseCPUMax(%q): limited with error %v", s, err)
		}
		if !limited {
			return
		}
		if q.quota <= 0 || q.period <= 0 {
			t.Fatalf("parseCPUMax(%q) = %+v, want positive quota and period", s, q)
		}
		c := q.ceil()
		hi := new(big.Int).Mul(big.NewInt(c), big.NewInt(q.period))
		lo := new(big.Int).Sub(hi, big.NewInt(q.period))
		if qq := big.NewInt(q.quota); c < 1 || hi.Cmp(qq) < 0 || lo.Cmp(qq) >= 0 {
			t.Fatalf("parseCPUMax(%q): ceil %d does not round %d/%d up", s, c, q.quota, q.period)
		}
	})
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3", "0-3,6", "0,2,4-7", "3-1", "", "0-65536", "1,1,1", "0-3:2", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCPUList(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("parseCPUList(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 1 || n > maxCPUID+1 {
			t.Fatalf("parseCPUList(%q) = %d, out of range", s, n)
		}
		if entries := strings.Count(s, ",") + 1; !strings.Contains(s, "-") && n > entries {
			t.Fatalf("parseCPUList(%q) = %d, more than its %d entries", s, n, entries)
		}
	})
}

func FuzzParseMemoryValue(f *testing.F) {
	for _, s := range []string{"max", "-1", "9223372036854771712", "268435456", "0", "", "256M", "18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, limited, err := parseMemoryValue(s)
		if err != nil && (limited || v != 0) {
			t.Fatalf("parseMemoryValue(%q) = %d, %v with error %v", s, v, limited, err)
		}
		if limited && v >= unlimitedMemory {
			t.Fatalf("parseMemoryValue(%q) = %d reported as a limit", s, v)
		}
		if !limited && v != 0 {
			t.Fatalf("parseMemoryValue(%q) = %d without a limit", s, v)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	for _, s := range []string{meminfoText(8192, 1024), "MemTotal: 1 kB", "MemTotal: 18446744073709551615 kB", "", "MemTotal:\nSwapTotal: 1 kB", "MemTotal: 5 MB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mi, err := parseMeminfo(s)
		if err != nil {
			if mi != (meminfo{}) {
				t.Fatalf("parseMeminfo(%q) = %+v with error %v", s, mi, err)
			}
			return
		}
		if mi.memTotal == 0 {
			t.Fatalf("parseMeminfo(%q) succeeded with MemTotal 0", s)
		}
	})
}

func FuzzParseCgroupFile(f *testing.F) {
	for _, s := range []string{"0::/\n", "12:memory:/docker/abc\n3:cpu,cpuacct:/\n0::/x\n", "bad", ":::", "1:name=systemd:/a:b", "-1::/", "0::relative"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := parseCgroupFile(s)
		lines := 0
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimSpace(l) != "" {
				lines++
			}
		}
		if len(entries) > lines {
			t.Fatalf("parseCgroupFile(%q): %d entries from %d lines", s, len(entries), lines)
		}
		if err == nil && len(entries) != lines {
			t.Fatalf("parseCgroupFile(%q): %d entries from %d lines without error", s, len(entries), lines)
		}
		for _, e := range entries {
			if e.id < 0 || !strings.HasPrefix(e.path, "/") {
				t.Fatalf("parseCgroupFile(%q): bad entry %+v", s, e)
			}
			rel, ok := relativeTo(e.path, "/")
			if ok && !strings.HasPrefix(rel, "/") {
				t.Fatalf("relativeTo(%q) = %q, not absolute", e.path, rel)
			}
		}
	})
}
