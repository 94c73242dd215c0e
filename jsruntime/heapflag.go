package jsruntime

import (
	"strconv"
	"strings"
)

// V8's flags for the old-space limit and the semi-space size, in MiB.
const (
	heapFlagName = "max-old-space-size"
	semiFlagName = "max-semi-space-size"
)

// heapFlag returns the V8 flag that sets the old-space limit to mb MiB.
func heapFlag(mb int) string {
	return "--" + heapFlagName + "=" + strconv.Itoa(mb)
}

// heapFlags returns the V8 flags for o: the old-space limit and, when
// o.SemiSpaceMB is set, the semi-space size, which pins the young
// generation that V8 would otherwise size from the memory it believes the
// machine has.
func heapFlags(o Options) []string {
	flags := []string{heapFlag(o.HeapMB)}
	if o.SemiSpaceMB > 0 {
		flags = append(flags, "--"+semiFlagName+"="+strconv.Itoa(o.SemiSpaceMB))
	}
	return flags
}

// splitV8Flag tells whether word is the V8 flag called flagName, spelled as
// V8 accepts it: one or two leading dashes, "-" or "_" between the words
// (--max-old-space-size, --max_old_space_size, -max-old-space-size). value
// is what follows "=", and hasValue says whether there was a "=".
func splitV8Flag(word, flagName string) (value string, hasValue, ok bool) {
	if !strings.HasPrefix(word, "-") {
		return "", false, false
	}
	name, value, hasValue := strings.Cut(strings.TrimPrefix(word[1:], "-"), "=")
	if strings.ReplaceAll(name, "_", "-") != flagName {
		return "", false, false
	}
	return value, hasValue, true
}

// parseHeapMB reads the value of V8's old-space flag as V8 does: a decimal
// number of MiB with an optional "+". 0 is V8's default (no limit of the
// user's own). ok is false for anything else, which V8 rejects.
func parseHeapMB(value string) (mb int, ok bool) {
	digits := strings.TrimPrefix(value, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	mb, err := strconv.Atoi(digits)
	return mb, err == nil
}

// heapSetting is a heap limit found in a list of V8 or node options.
type heapSetting struct {
	mb    int
	found bool
}

// scanHeapFlags finds the old-space limit that a list of options sets: the
// last valid --max-old-space-size=N wins, as in V8. With spaced true, the
// value may also be the next option (--max-old-space-size N) unless that
// starts with "-".
func scanHeapFlags(options []string, spaced bool) heapSetting {
	return scanV8Flags(options, heapFlagName, spaced)
}

// scanV8Flags is scanHeapFlags for the V8 flag called flagName.
func scanV8Flags(options []string, flagName string, spaced bool) heapSetting {
	var found heapSetting
	for i := 0; i < len(options); i++ {
		value, hasValue, ok := splitV8Flag(options[i], flagName)
		if !ok {
			continue
		}
		if !hasValue && spaced && i+1 < len(options) && !strings.HasPrefix(options[i+1], "-") {
			i++
			value = options[i]
		}
		if mb, valid := parseHeapMB(value); valid {
			found = heapSetting{mb: mb, found: true}
		}
	}
	return found
}
