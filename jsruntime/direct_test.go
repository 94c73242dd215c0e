package jsruntime

import (
	"strings"
	"testing"
)

func TestNodePreloadGoesBesideTheUsersOptions(t *testing.T) {
	w, _, err := Prepare(Worker{Argv: []string{"node", "server.js"},
		Env: []string{`NODE_OPTIONS=--enable-source-maps --max-old-space-size=300`}},
		Options{Runtime: Node(), HeapMB: 256, Preload: `/tmp/a dir/node-preload.js`})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := w.LookupVar(nodeOptionsVar)
	opts, err := splitNodeOptions(got)
	if err != nil {
		t.Fatalf("NODE_OPTIONS %q does not parse: %v", got, err)
	}
	want := []string{"--enable-source-maps", "--max-old-space-size=300", "--require", "/tmp/a dir/node-preload.js"}
	if strings.Join(opts, "|") != strings.Join(want, "|") {
		t.Errorf("NODE_OPTIONS = %q, want the user's options kept and the preload required: %q", opts, want)
	}
}

func TestNodeDenoAndBunServeDirectMode(t *testing.T) {
	for _, rt := range Default().Runtimes() {
		if (rt.DirectPreload != nil) != (rt.Name == "node" || rt.Name == "deno" || rt.Name == "bun") {
			t.Errorf("%s: direct preload %v", rt.Name, rt.DirectPreload != nil)
		}
		if rt.DirectPreload == nil && rt.NoDirect == "" {
			t.Errorf("%s cannot run in direct mode but says not why", rt.Name)
		}
	}
	if Other().NoDirect == "" {
		t.Error("Other says not why it cannot run in direct mode")
	}
}
