package machine

import (
	"strings"
	"testing"
)

func TestParseCPUMax(t *testing.T) {
	cases := []struct {
		in      string
		cpus    float64
		limited bool
		err     string
	}{
		{"max 100000", 0, false, ""},
		{"max", 0, false, ""},
		{"50000 100000", 0.5, true, ""},
		{"150000 100000\n", 1.5, true, ""},
		{"400000", 4, true, ""},
		{"", 0, false, "want"},
		{"1 2 3", 0, false, "want"},
		{"half 100000", 0, false, "quota: not an integer"},
		{"50000 0", 0, false, "period: not positive"},
		{"-5 100000", 0, false, "quota: not positive"},
		{"max zero", 0, false, "period"},
	}
	for _, c := range cases {
		q, limited, err := parseCPUMax(c.in)
		if !errMatches(err, c.err) || limited != c.limited || (limited && q.cpus() != c.cpus) {
			t.Errorf("parseCPUMax(%q) = %v, %v, %v; want %v, %v, error %q", c.in, q.cpus(), limited, err, c.cpus, c.limited, c.err)
		}
	}
}

func TestQuotaCeil(t *testing.T) {
	cases := []struct {
		q    quota
		want int64
	}{
		{quota{50000, 100000}, 1},
		{quota{150000, 100000}, 2},
		{quota{400000, 100000}, 4},
		{quota{1000, 100000}, 1},
		{quota{100001, 100000}, 2},
		{quota{9223372036854775807, 1000000}, 9223372036855},
	}
	for _, c := range cases {
		if got := c.q.ceil(); got != c.want {
			t.Errorf("%+v.ceil() = %d, want %d", c.q, got, c.want)
		}
	}
}

func TestParseCFSQuota(t *testing.T) {
	cases := []struct {
		quota, period string
		cpus          float64
		limited       bool
		err           string
	}{
		{"-1", "100000", 0, false, ""},
		{"-1\n", "", 0, false, ""},
		{"50000", "100000", 0.5, true, ""},
		{"50000", "", 0, false, "period"},
		{"0", "100000", 0, false, "quota: not positive"},
		{"x", "100000", 0, false, "quota: not an integer"},
	}
	for _, c := range cases {
		q, limited, err := parseCFSQuota(c.quota, c.period)
		if !errMatches(err, c.err) || limited != c.limited || (limited && q.cpus() != c.cpus) {
			t.Errorf("parseCFSQuota(%q, %q) = %v, %v, %v", c.quota, c.period, q, limited, err)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	cases := []struct {
		in   string
		want int
		err  string
	}{
		{"0", 1, ""},
		{"0-3", 4, ""},
		{"0-3,6", 5, ""},
		{"0-3,6\n", 5, ""},
		{"0,2,4,6-7", 5, ""},
		{"0-3,2-5", 6, ""},
		{"3,3,3", 1, ""},
		{"0-65536", 65537, ""},
		{"", 0, "empty"},
		{"3-1", 0, "backwards"},
		{"a", 0, "bad CPU number"},
		{"0-", 0, "bad CPU number"},
		{"-1", 0, "bad CPU number"},
		{"0-3:2", 0, "bad CPU number"},
		{"0,,1", 0, "bad CPU number"},
		{"65537", 0, "bad CPU number"},
	}
	for _, c := range cases {
		got, err := parseCPUList(c.in)
		if !errMatches(err, c.err) || got != c.want {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d, error %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseMemoryValue(t *testing.T) {
	cases := []struct {
		in      string
		want    uint64
		limited bool
		err     string
	}{
		{"max", 0, false, ""},
		{"max\n", 0, false, ""},
		{"-1", 0, false, ""},
		{"9223372036854771712", 0, false, ""},
		{"9223372036854775807", 0, false, ""},
		{"4611686018427387904", 0, false, ""},
		{"4611686018427387903", 4611686018427387903, true, ""},
		{"268435456", 256 * MiB, true, ""},
		{"0", 0, true, ""},
		{"", 0, false, "not a byte count"},
		{"256M", 0, false, "not a byte count"},
		{"-2", 0, false, "not a byte count"},
		{"18446744073709551616", 0, false, "not a byte count"},
	}
	for _, c := range cases {
		got, limited, err := parseMemoryValue(c.in)
		if !errMatches(err, c.err) || got != c.want || limited != c.limited {
			t.Errorf("parseMemoryValue(%q) = %d, %v, %v; want %d, %v, error %q", c.in, got, limited, err, c.want, c.limited, c.err)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	cases := []struct {
		in   string
		want meminfo
		err  string
	}{
		{meminfoText(1024, 512), meminfo{GiB, 512 * MiB}, ""},
		{"MemTotal: 1024 kB\n", meminfo{MiB, 0}, ""},
		{"MemTotal: 4096\n", meminfo{4096, 0}, ""},
		{"Foo: x\nMemTotal:\t2048 kB\nSwapTotal: 0 kB", meminfo{2 * MiB, 0}, ""},
		{"", meminfo{}, "no MemTotal"},
		{"MemTotal: 0 kB\n", meminfo{}, "no MemTotal"},
		{"MemTotal: 1 MB\n", meminfo{}, "MemTotal: want"},
		{"MemTotal: -1 kB\n", meminfo{}, "not a number"},
		{"MemTotal: 18446744073709551615 kB\n", meminfo{}, "too large"},
		{"MemTotal: 1024 kB\nSwapTotal: lots\n", meminfo{}, "SwapTotal"},
	}
	for _, c := range cases {
		got, err := parseMeminfo(c.in)
		if !errMatches(err, c.err) || got != c.want {
			t.Errorf("parseMeminfo(%q) = %+v, %v; want %+v, error %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseCgroupFile(t *testing.T) {
	in := "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/x\n0::/\nbad line\n4:pids:relative\n"
	got, err := parseCgroupFile(in)
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("error = %v, want one naming lines 5 and 6", err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d entries, want 4: %+v", len(got), got)
	}
	if !got[0].has("memory") || !got[0].realV1() || got[0].path != "/docker/abc" {
		t.Errorf("entry 0 = %+v", got[0])
	}
	if !got[1].has("cpu") || !got[1].has("cpuacct") || got[1].has("cpuset") {
		t.Errorf("entry 1 = %+v", got[1])
	}
	if got[2].realV1() || got[2].unified() {
		t.Errorf("name=systemd entry = %+v, want named v1", got[2])
	}
	if !got[3].unified() || got[3].path != "/" {
		t.Errorf("entry 3 = %+v, want unified /", got[3])
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `34 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid shared:5 master:1 - cgroup cgroup rw,memory
40 30 0:37 / /sys/fs/cgroup/with\040space rw - cgroup2 cgroup2 rw
41 30 0:37 / /short rw
`
	got, err := parseMountinfo(in)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error = %v, want one naming line 3", err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d mounts, want 2: %+v", len(got), got)
	}
	if got[0].root != "/docker/abc" || got[0].point != "/sys/fs/cgroup/memory" || got[0].fstype != "cgroup" || !got[0].hasOpt("memory") {
		t.Errorf("mount 0 = %+v", got[0])
	}
	if got[1].point != "/sys/fs/cgroup/with space" || got[1].fstype != "cgroup2" {
		t.Errorf("mount 1 = %+v", got[1])
	}
}

func TestRelativeTo(t *testing.T) {
	cases := []struct {
		p, root, want string
		ok            bool
	}{
		{"/a/b", "/", "/a/b", true},
		{"/a/b", "/a", "/b", true},
		{"/a", "/a", "/", true},
		{"/ab", "/a", "", false},
		{"/../x", "/", "", false},
		{"/a/../../x", "/", "", false},
	}
	for _, c := range cases {
		got, ok := relativeTo(c.p, c.root)
		if got != c.want || ok != c.ok {
			t.Errorf("relativeTo(%q, %q) = %q, %v; want %q, %v", c.p, c.root, got, ok, c.want, c.ok)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	cases := []struct {
		in   uint64
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{2048, "2KiB"},
		{402653184, "384MiB"},
		{1073741824, "1.0GiB"},
		{1610612736, "1.5GiB"},
		{2*GiB - 1, "1.9GiB"},
		{24683620 * KiB, "23.5GiB"},
		{3 * TiB, "3.0TiB"},
	}
	for _, c := range cases {
		if got := FormatBytes(c.in); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

// errMatches reports whether err is nil when want is empty, or contains want.
func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
