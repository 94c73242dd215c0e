package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/jsruntime"
)

// asPercoreVar, set to "1" in the environment of the test binary, makes it
// run as percore with the runtimes of testRuntimes, percore's own and the
// fake ones below, which no other file mentions.
const asPercoreVar = "PERCORE_TEST_AS_PERCORE"

// fakeHeapVar is the variable that gives fakejs its heap limit behind a
// wrapper.
const fakeHeapVar = "FAKEJS_HEAP_MB"

// fakeJS is a runtime that percore does not know: the command fakejs
// (testdata/fakejs, a node script), whose heap limit has a hard cap set with
// --heap-mb=N right after its binary, or with FAKEJS_HEAP_MB behind a
// wrapper.
func fakeJS() jsruntime.Runtime {
	return jsruntime.Runtime{
		Name:        "fakejs",
		Binaries:    []string{"fakejs"},
		Memory:      jsruntime.HeapCap,
		HeapSetting: "--heap-mb",
		Prepare: func(w *jsruntime.Worker, o jsruntime.Options, l jsruntime.Launch) (jsruntime.Applied, error) {
			if o.HeapMB == 0 {
				return jsruntime.Applied{}, nil
			}
			value := strconv.Itoa(o.HeapMB)
			if l.Direct() {
				argv := append([]string(nil), w.Argv[:l.At+1]...)
				w.Argv = append(append(argv, "--heap-mb="+value), w.Argv[l.At+1:]...)
				return jsruntime.Applied{HeapFlag: "--heap-mb=" + value + " (argv)"}, nil
			}
			w.SetVar(fakeHeapVar, value)
			return jsruntime.Applied{HeapFlag: fakeHeapVar + "=" + value + " (env)"}, nil
		},
	}
}

// fakeRSS is a runtime that percore does not know whose heap has no hard
// cap, like Bun: the command fakerss, told its budget in FAKERSS_RAM_MB.
func fakeRSS() jsruntime.Runtime {
	return jsruntime.Runtime{
		Name:     "fakerss",
		Binaries: []string{"fakerss"},
		Memory:   jsruntime.RecycleByRSS,
		Prepare: func(w *jsruntime.Worker, o jsruntime.Options, _ jsruntime.Launch) (jsruntime.Applied, error) {
			if o.HeapMB > 0 {
				w.SetVar("FAKERSS_RAM_MB", strconv.Itoa(o.HeapMB))
			}
			return jsruntime.Applied{}, nil
		},
	}
}

// testRuntimes are percore's runtimes and the fake ones.
func testRuntimes() jsruntime.Registry {
	r, err := jsruntime.NewRegistry(append(jsruntime.Default().Runtimes(), fakeJS(), fakeRSS())...)
	if err != nil {
		panic(err)
	}
	return r
}

// TestFakeRuntimePlan checks that "percore plan" recognises a runtime it
// does not know from its descriptor alone, sizes it by the descriptor's
// memory policy and puts its heap setting where the descriptor says.
func TestFakeRuntimePlan(t *testing.T) {
	cases := []struct {
		args []string
		want []string
		lack []string
	}{
		{[]string{"--cpus", "2", "--memory", "512M", "--", "testdata/fakejs", "app"},
			[]string{"runtime:  fakejs", "heap:     147MiB V8 old space per worker (auto)\n", `argv ["testdata/fakejs" "--heap-mb=147" "app"]`},
			[]string{"semi-space", fakeHeapVar}},
		{[]string{"--cpus", "2", "--memory", "512M", "--", "sh", "-c", "exec fakejs app"},
			[]string{"runtime:  fakejs", fakeHeapVar + "=147"}, nil},
		{[]string{"--cpus", "2", "--memory", "512M", "--runtime", "fakejs", "--", "./start"},
			[]string{"runtime:  fakejs", fakeHeapVar + "=147"}, nil},
		{[]string{"--cpus", "2", "--memory", "1G", "--", "fakerss", "app"},
			[]string{"runtime:  fakerss", "heap:     none passed (no hard heap cap, recycled by RSS)", "FAKERSS_RAM_MB=313"}, nil},
		{[]string{"--cpus", "2", "--memory", "1G", "--heap", "100", "--", "fakerss", "app"},
			[]string{"warning:  --heap is ignored"}, []string{"FAKERSS_RAM_MB"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := runWith(testRuntimes(), append([]string{"plan"}, c.args...), []string{"PATH=/usr/bin"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("plan output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.lack {
				if strings.Contains(out.String(), w) {
					t.Errorf("plan output has %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"plan", "--runtime", "fakejs"}, nil, &out, &errOut); code != exitUsage {
		t.Errorf("percore's own runtimes take --runtime fakejs: exit %d", code)
	}
}

// TestFakeRuntimeRun runs percore, as the test binary with the fake
// runtimes, on testdata/fakejs and checks that the worker got the heap flag
// its descriptor sets.
func TestFakeRuntimeRun(t *testing.T) {
	needNode(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in := launchBin(t, self, []string{asPercoreVar + "=1"}, nil, "--workers", "1", "--heap", "96", "--", "testdata/fakejs", "app")
	in.waitLog("worker ready", 30*time.Second)
	plan := in.findLog("plan:", time.Second)
	if msg, _ := plan["@message"].(string); !strings.Contains(msg, "runtime=fakejs") || !strings.Contains(msg, "heap=96MiB each (--heap)") {
		t.Errorf("plan line %q, want runtime=fakejs with a 96MiB heap", msg)
	}
	var got struct {
		HeapFlag string   `json:"heap_flag"`
		HeapEnv  string   `json:"heap_env"`
		Args     []string `json:"args"`
	}
	getJSON(t, "http://"+in.addr+"/", &got)
	if got.HeapFlag != "--heap-mb=96" || got.HeapEnv != "" || strings.Join(got.Args, " ") != "--heap-mb=96 app" {
		t.Errorf("fakejs worker got %+v, want --heap-mb=96 before its script", got)
	}
}
