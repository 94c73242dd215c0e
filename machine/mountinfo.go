package machine

import (
	"errors"
	"fmt"
	"strings"
)

// mount is one line of /proc/<pid>/mountinfo, reduced to what cgroup
// discovery needs.
type mount struct {
	root      string   // field 4: the path of the mounted directory in its filesystem
	point     string   // field 5: where it is mounted
	fstype    string   // first field after the "-" separator
	superOpts []string // third field after the separator, split on commas
}

// hasOpt reports whether the mount's super options include o.
func (m mount) hasOpt(o string) bool {
	for _, x := range m.superOpts {
		if x == o {
			return true
		}
	}
	return false
}

// parseMountinfo parses /proc/<pid>/mountinfo. Malformed lines are skipped
// and reported in the returned error; the mounts that parsed are still
// returned.
func parseMountinfo(s string) ([]mount, error) {
	var mounts []mount
	var errs []error
	for i, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		mounts = append(mounts, m)
	}
	return mounts, errors.Join(errs...)
}

// parseMountLine parses one mountinfo line:
// "id parent major:minor root point options [optional...] - fstype source superopts".
func parseMountLine(line string) (mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+4 {
		return mount{}, fmt.Errorf("want fields ... - fstype source options, got %q", line)
	}
	return mount{
		root:      unescapeOctal(f[3]),
		point:     unescapeOctal(f[4]),
		fstype:    f[sep+1],
		superOpts: strings.Split(f[sep+3], ","),
	}, nil
}

// unescapeOctal undoes the \ooo escapes the kernel uses for spaces, tabs,
// newlines and backslashes in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isOctal reports whether c is an octal digit.
func isOctal(c byte) bool { return c >= '0' && c <= '7' }
