package machine

import "fmt"

// Byte sizes.
const (
	KiB uint64 = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

// FormatBytes renders a byte count for plan lines: whole KiB or MiB below a
// GiB ("384MiB"), one decimal from a GiB up ("1.0GiB", "2.5TiB"), plain
// bytes below a KiB ("512B"). Partial units are dropped, never rounded up.
func FormatBytes(b uint64) string {
	switch {
	case b >= TiB:
		return fmt.Sprintf("%.1fTiB", tenths(b, TiB))
	case b >= GiB:
		return fmt.Sprintf("%.1fGiB", tenths(b, GiB))
	case b >= MiB:
		return fmt.Sprintf("%dMiB", b/MiB)
	case b >= KiB:
		return fmt.Sprintf("%dKiB", b/KiB)
	default:
		return fmt.Sprintf("%dB", b)
	}
}

// tenths returns b/unit truncated to one decimal.
func tenths(b, unit uint64) float64 {
	return float64(b/unit*10+b%unit*10/unit) / 10
}
