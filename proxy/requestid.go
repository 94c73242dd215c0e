package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// maxRequestIDLen bounds an X-Request-Id kept from a client; a longer one,
// or one with bytes outside visible ASCII, is replaced.
const maxRequestIDLen = 128

// requestIDs makes X-Request-Id values: a random prefix drawn once per
// process, so ids from several percore instances do not collide, and a
// counter. It costs one atomic add per request. It is safe for concurrent use.
type requestIDs struct {
	prefix [17]byte // 16 hex digits and a dash
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var r requestIDs
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	hex.Encode(r.prefix[:16], b[:])
	r.prefix[16] = '-'
	return &r
}

// appendNext appends a fresh id to dst.
func (r *requestIDs) appendNext(dst []byte) []byte {
	dst = append(dst, r.prefix[:]...)
	return strconv.AppendUint(dst, r.n.Add(1), 10)
}

// validRequestID reports whether a client's X-Request-Id may be passed on
// as it is: 1 to 128 bytes of visible ASCII, so it cannot break a log line.
func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > maxRequestIDLen {
		return false
	}
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
