package jsruntime

import (
	"encoding/json"
	"testing"
)

func TestKindString(t *testing.T) {
	for kind, want := range map[Kind]string{Other: "other", Node: "node", Deno: "deno", Bun: "bun", Kind(9): "Kind(9)"} {
		if got := kind.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(kind), got, want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for s, want := range map[string]Kind{"node": Node, "deno": Deno, "bun": Bun, "other": Other, "Node": Node, "BUN": Bun} {
		got, err := ParseKind(s)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

func TestParseKindError(t *testing.T) {
	for _, s := range []string{"x", "", "nodejs", "node "} {
		_, err := ParseKind(s)
		want := `unknown runtime "` + s + `" (want node, deno, bun or other)`
		if err == nil || err.Error() != want {
			t.Errorf("ParseKind(%q) error = %v, want %q", s, err, want)
		}
	}
}

func TestKindText(t *testing.T) {
	var got struct{ Runtime Kind }
	if err := json.Unmarshal([]byte(`{"Runtime":"deno"}`), &got); err != nil || got.Runtime != Deno {
		t.Fatalf("unmarshal deno = %v, %v", got.Runtime, err)
	}
	out, err := json.Marshal(got)
	if err != nil || string(out) != `{"Runtime":"deno"}` {
		t.Fatalf("marshal = %s, %v", out, err)
	}
	if _, err := json.Marshal(struct{ K Kind }{Kind(7)}); err == nil {
		t.Error("marshal Kind(7): no error")
	}
	if err := json.Unmarshal([]byte(`{"Runtime":"java"}`), &got); err == nil {
		t.Error("unmarshal java: no error")
	}
}
