package proxy

import "testing"

func TestBareLFConnScan(t *testing.T) {
	cases := []struct {
		raw       string
		done, eof bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false},
		{"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n\n", true, false},
		{"GET / HTTP/1.0\r\n\r\n", true, false},
		{"GET / HTTP/1.1\nHost: a\n\n", true, true},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", true, true},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", true, true},
		{"GET / HTTP/1.0\n\n", true, true},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n", true, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false, false},
		{"GET / HTTP/1.1\nHost: a\n", false, false},
	}
	for _, c := range cases {
		whole := &bareLFConn{}
		whole.scan([]byte(c.raw))
		bytewise := &bareLFConn{}
		for i := 0; i < len(c.raw) && !bytewise.done; i++ {
			bytewise.scan([]byte{c.raw[i]})
		}
		for _, got := range []*bareLFConn{whole, bytewise} {
			if got.done != c.done || got.eof != c.eof {
				t.Errorf("%q: done %v, eof %v; want %v, %v", c.raw, got.done, got.eof, c.done, c.eof)
			}
		}
	}
}
