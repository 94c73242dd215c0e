package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// terminalSafe returns s with every character a terminal could obey
// replaced by a visible escape. percore status and percore top print text
// read from /status, which whatever answers on the admin address wrote; it
// must not drive the terminal (OSC 52 writes the clipboard, CSI moves the
// cursor and clears the screen). It replaces
//   - the C0 controls, tab and newline included (each string printed is one
//     table cell or one line), and DEL, with \xNN: ESC becomes the four
//     characters \x1b, and the rest of its sequence shows as plain text;
//   - the C1 controls U+0080 to U+009F (U+009B is CSI, U+009D OSC), with
//     \uNNNN;
//   - bytes that are not UTF-8 (a lone 0x9b is CSI to a terminal in an 8-bit
//     mode), with \xNN.
func terminalSafe(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// errNotJSON says that what /status answered is not JSON.
var errNotJSON = errors.New("the answer is not JSON")

// jsonTerminalSafe returns the JSON document body, as percore status --json
// prints it, with DEL and the C1 controls written as \u escapes and bytes
// that are not UTF-8 as \ufffd (what a JSON decoder reads them as): the same
// document, which no longer drives a terminal. Valid JSON holds no other
// control character: within strings they must be escaped, and outside them
// only tab, newline and carriage return may appear, as white space. It
// returns errNotJSON when body is not valid JSON.
func jsonTerminalSafe(body []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errNotJSON
	}
	var b strings.Builder
	b.Grow(len(body))
	for i := 0; i < len(body); {
		r, n := utf8.DecodeRune(body[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\ufffd`)
		case r == 0x7f || (r >= 0x80 && r <= 0x9f):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.Write(body[i : i+n])
		}
		i += n
	}
	return []byte(b.String()), nil
}
