package jsruntime

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestRuntimeString(t *testing.T) {
	for _, c := range []struct {
		rt   Runtime
		want string
	}{{Other(), "other"}, {Runtime{}, "other"}, {Node(), "node"}, {Deno(), "deno"}, {Bun(), "bun"}} {
		if got := c.rt.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestMemoryPolicyString(t *testing.T) {
	for m, want := range map[MemoryPolicy]string{NoHeapLimit: "no heap limit", HeapCap: "heap cap",
		RecycleByRSS: "recycle by RSS", MemoryPolicy(9): "MemoryPolicy(9)"} {
		if got := m.String(); got != want {
			t.Errorf("MemoryPolicy(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	for s, want := range map[string]string{"node": "node", "deno": "deno", "bun": "bun", "other": "other", "Node": "node", "BUN": "bun"} {
		got, err := Default().Lookup(s)
		if err != nil || got.Name != want {
			t.Errorf("Lookup(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

func TestLookupError(t *testing.T) {
	for _, s := range []string{"x", "", "nodejs", "node "} {
		_, err := Default().Lookup(s)
		want := `unknown runtime "` + s + `" (want node, deno, bun or other)`
		if err == nil || err.Error() != want || !errors.Is(err, ErrUnknownRuntime) {
			t.Errorf("Lookup(%q) error = %v, want %q", s, err, want)
		}
	}
}

// TestDefaultRegistryIsValid checks the default runtimes against the rules
// NewRegistry enforces, and their memory policies.
func TestDefaultRegistryIsValid(t *testing.T) {
	r, err := NewRegistry(Default().Runtimes()...)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "node,deno,bun,other" {
		t.Errorf("Names() = %s", got)
	}
	for name, want := range map[string]MemoryPolicy{"node": HeapCap, "deno": HeapCap, "bun": RecycleByRSS, "other": NoHeapLimit} {
		if rt, _ := r.Lookup(name); rt.Memory != want {
			t.Errorf("%s: memory policy %v, want %v", name, rt.Memory, want)
		}
	}
}

func TestNewRegistryErrors(t *testing.T) {
	noop := func(*Worker, Options, Launch) (Applied, error) { return Applied{}, nil }
	for _, c := range []struct {
		name     string
		runtimes []Runtime
		want     string
	}{
		{"no name", []Runtime{{Binaries: []string{"x"}}}, `runtime name "" is not a lower-case word`},
		{"capital", []Runtime{{Name: "Fake"}}, `runtime name "Fake" is not a lower-case word`},
		{"other", []Runtime{{Name: "other"}}, `"other" names commands of no known runtime`},
		{"twice", []Runtime{Node(), Node()}, `two runtimes named "node"`},
		{"binary twice", []Runtime{Node(), {Name: "fake", Binaries: []string{"node"}}}, `command "node" is claimed by "node" and "fake"`},
		{"wrapper twice", []Runtime{Node(), {Name: "fake", Wrappers: []string{"npm"}}}, `command "npm" is claimed by "node" and "fake"`},
		{"empty binary", []Runtime{{Name: "fake", Binaries: []string{""}}}, `runtime "fake" has an empty command name`},
		{"cap without prepare", []Runtime{{Name: "fake", Memory: HeapCap}}, `runtime "fake" caps its heap but has no Prepare`},
		{"two package runtimes", []Runtime{Node(), {Name: "fake", RunsPackages: true, Prepare: noop}}, `both "node" and "fake" run npm packages`},
		{"in process, not a wrapper", []Runtime{{Name: "fake", Wrappers: []string{"fakex"}, InProcess: []string{"fakey"}}},
			`runtime "fake": "fakey" runs in process but is not one of its wrappers`},
	} {
		_, err := NewRegistry(c.runtimes...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// TestRegistryWithAnotherRuntime checks that a runtime added to a registry
// is detected directly, behind its wrapper and through env and sh -c, and
// prepared with its own Prepare: a flag after its binary when argv runs it,
// a variable otherwise.
func TestRegistryWithAnotherRuntime(t *testing.T) {
	fake := Runtime{
		Name:     "fakejs",
		Binaries: []string{"fakejs"},
		Wrappers: []string{"fakex"},
		Memory:   HeapCap,
		Prepare: func(w *Worker, o Options, l Launch) (Applied, error) {
			if l.Direct() {
				w.Argv = append(w.Argv[:l.At+1:l.At+1], append([]string{"--heap=" + strconv.Itoa(o.HeapMB)}, w.Argv[l.At+1:]...)...)
				return Applied{HeapFlag: "--heap (argv)"}, nil
			}
			w.SetVar("FAKEJS_HEAP", strconv.Itoa(o.HeapMB))
			return Applied{HeapFlag: "FAKEJS_HEAP (env)"}, nil
		},
	}
	r, err := NewRegistry(append(Default().Runtimes(), fake)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv     string
		want     string
		wantArgv string
		wantEnv  string
	}{
		{"fakejs|app.js", "fakejs", "fakejs|--heap=100|app.js", ""},
		{"/opt/bin/fakejs2|app.js", "fakejs", "/opt/bin/fakejs2|--heap=100|app.js", ""},
		{"fakex|start", "fakejs", "fakex|start", "FAKEJS_HEAP=100"},
		{"sh|-c|fakejs app.js", "fakejs", "sh|-c|fakejs app.js", "FAKEJS_HEAP=100"},
		{"env|-i|fakejs|app.js", "fakejs", "env|-i|fakejs|--heap=100|app.js", ""},
		{"env|-i|sh|-c|fakejs app.js", "fakejs", "env|-i|FAKEJS_HEAP=100|sh|-c|fakejs app.js", ""},
		{"npx|fakejs|app.js", "fakejs", "npx|fakejs|app.js", "FAKEJS_HEAP=100"},
		{"node|app.js", "node", "node|--max-old-space-size=100|app.js", ""},
	} {
		argv := splitArgs(c.argv)
		rt := r.Detect(argv)
		if rt.Name != c.want {
			t.Errorf("Detect(%q) = %v, want %s", argv, rt, c.want)
			continue
		}
		if Detect(argv).Name == "fakejs" {
			t.Errorf("the default registry knows fakejs")
		}
		got, _, err := r.Prepare(Worker{Argv: argv}, Options{Runtime: rt, HeapMB: 100})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got.Argv, "|") != c.wantArgv {
			t.Errorf("Prepare(%q) argv = %q, want %s", argv, got.Argv, c.wantArgv)
		}
		if strings.Join(got.Env, " ") != c.wantEnv {
			t.Errorf("Prepare(%q) env = %q, want %s", argv, got.Env, c.wantEnv)
		}
	}
}
