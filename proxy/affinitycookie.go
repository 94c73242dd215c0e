package proxy

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"
)

// takeSlotCookie reads the worker slot the affinity cookie names and takes
// percore's cookie out of the request: every pair named AffinityCookieName
// leaves the Cookie lines with its separator, and the rest of each line
// stays as the client sent it, byte for byte, whatever it holds (quotes,
// JSON, pairs without "=" or without a name); a line left empty is
// removed. The first pair named AffinityCookieName counts; ok is false
// when there is none or its value is not a slot.
//
// It edits the lines as bytes: fasthttp's cookie parser (Cookie and
// friends) would make fasthttp write the header again from its parsed
// pairs, without quotes, JSON values and pairs without a name.
// bufs holds *[]byte scratch buffers; with one in it, it allocates nothing.
func takeSlotCookie(h *fasthttp.RequestHeader, bufs *sync.Pool) (slot int, ok bool) {
	var linesBuf [4][]byte
	lines := cookieLines(linesBuf[:0], h)
	mentioned := false
	for _, v := range lines {
		mentioned = mentioned || bytes.Contains(v, []byte(AffinityCookieName))
	}
	if !mentioned {
		return 0, false
	}
	bp, _ := bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	var endsBuf [4]int
	ends := endsBuf[:0]
	seen := false
	for _, v := range lines {
		var value []byte
		var found bool
		buf, value, found = appendWithoutCookie(buf, v, AffinityCookieName)
		if found && !seen {
			seen = true
			slot, ok = parseSlotCookie(unquoteCookie(value))
		}
		ends = append(ends, len(buf))
	}
	// The lines are copied out, so that deleting them and adding them
	// again cannot overwrite one still to be added.
	h.Del(fasthttp.HeaderCookie)
	wasOff := h.DisableSpecialHeader() // Cookie lines added as they are, not parsed
	start := 0
	for _, end := range ends {
		if end > start {
			h.AddBytesV(fasthttp.HeaderCookie, buf[start:end])
		}
		start = end
	}
	if !wasOff {
		h.EnableSpecialHeader()
	}
	*bp = buf
	bufs.Put(bp)
	return slot, ok
}

// cookieLines appends to dst the values of the request's Cookie lines in
// the order they came. Deleting other headers may have reordered the
// stored lines; the header block as it came off the wire has them in
// order, unless the header was built by code and has no such block.
func cookieLines(dst [][]byte, h *fasthttp.RequestHeader) [][]byte {
	lines := h.PeekAll(fasthttp.HeaderCookie)
	if len(lines) < 2 || len(h.RawHeaders()) == 0 {
		return append(dst, lines...)
	}
	for raw := h.RawHeaders(); len(raw) > 0; {
		var name, value []byte
		name, value, raw = nextHeader(raw)
		if len(name) == len(fasthttp.HeaderCookie) && bytes.EqualFold(name, []byte(fasthttp.HeaderCookie)) {
			dst = append(dst, trimOWS(value))
		}
	}
	return dst
}

// appendWithoutCookie appends to dst the Cookie value v without its pairs
// named name, and returns the value of the first of them (found reports
// one). A Cookie value is a list of pairs separated by ";" (RFC 6265
// section 4.2.1 writes "; "). A pair leaves with the separator before it,
// or after it when it is first, so that the others keep the separators and
// white space they came with; white space left at either end is trimmed.
// Without such a pair, dst gets v as it is. It allocates nothing when dst
// has room for v.
func appendWithoutCookie(dst, v []byte, name string) (out, value []byte, found bool) {
	start := len(dst)
	kept := 0
	for rest, more := v, true; more; {
		var seg []byte
		if i := bytes.IndexByte(rest, ';'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			seg, more = rest, false
		}
		if val, ok := cookiePairValue(seg, name); ok {
			if !found {
				value, found = val, true
			}
			continue
		}
		if kept > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, seg...)
		kept++
	}
	n := copy(dst[start:], bytes.Trim(dst[start:], " \t")) // moves left, or not at all
	return dst[:start+n], value, found
}

// cookiePairValue returns the value of a cookie pair named name: "name=value",
// with optional white space around the name and the value.
func cookiePairValue(pair []byte, name string) ([]byte, bool) {
	k, val, ok := bytes.Cut(pair, []byte("="))
	if !ok || string(bytes.Trim(k, " \t")) != name {
		return nil, false
	}
	return bytes.Trim(val, " \t"), true
}

// unquoteCookie removes the double quotes a cookie value may be written in
// (RFC 6265 section 4.1.1).
func unquoteCookie(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}
