package jsruntime

import (
	"fmt"
	"strings"
)

// Kind is a JavaScript runtime percore knows how to size.
type Kind int

// The runtimes percore tells apart.
const (
	// Other is any command that runs none of the runtimes below; percore
	// runs it but passes it no heap limit.
	Other Kind = iota
	// Node is Node.js, sized with V8's --max-old-space-size.
	Node
	// Deno is Deno, sized with --v8-flags or DENO_V8_FLAGS.
	Deno
	// Bun is Bun, whose JavaScriptCore heap has no hard cap.
	Bun
)

// String returns the kind's name: "other", "node", "deno" or "bun".
func (k Kind) String() string {
	switch k {
	case Other:
		return "other"
	case Node:
		return "node"
	case Deno:
		return "deno"
	case Bun:
		return "bun"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// valid reports whether k is one of the declared kinds.
func (k Kind) valid() bool {
	return k >= Other && k <= Bun
}

// ParseKind returns the Kind named s ("node", "deno", "bun" or "other", in
// any letter case).
func ParseKind(s string) (Kind, error) {
	for k := Other; k <= Bun; k++ {
		if strings.EqualFold(s, k.String()) {
			return k, nil
		}
	}
	return Other, fmt.Errorf("unknown runtime %q (want node, deno, bun or other)", s)
}

// MarshalText returns the kind's name, so that a Kind can be written to
// JSON or used with flag.TextVar.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.valid() {
		return nil, fmt.Errorf("marshal runtime kind: %v is not a known kind", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText sets the kind from its name, as ParseKind reads it.
func (k *Kind) UnmarshalText(text []byte) error {
	parsed, err := ParseKind(string(text))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}
