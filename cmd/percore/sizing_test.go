package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/percore/percore/internal/testutil"
	"github.com/percore/percore/jsruntime"
	"github.com/percore/percore/machine"
	"github.com/percore/percore/sizing"
)

// runtimeBin finds deno or bun as the test command installs them. Outside
// CI a missing runtime skips the test; in CI it fails it.
func runtimeBin(t *testing.T, name string) string {
	t.Helper()
	local, _ := filepath.Abs(filepath.Join("..", "..", ".tools", "bin", name))
	if _, err := os.Stat(local); err == nil {
		return local
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed: scripts/install-tools must install it for CI", name)
	}
	t.Skipf("%s is not installed (run scripts/install-tools)", name)
	return ""
}

type heapInfo struct {
	HeapSizeLimit int64  `json:"heap_size_limit"`
	NodeOptions   string `json:"node_options"`
	ForceRAM      string `json:"force_ram"`
	Runtime       string `json:"runtime"`
}

const mib = 1 << 20

// checkHeap asks the worker for its heap limit and checks it lies in
// [lowMiB, highMiB).
func checkHeap(t *testing.T, in *instance, lowMiB, highMiB int64) heapInfo {
	t.Helper()
	var h heapInfo
	getJSON(t, "http://"+in.addr+"/", &h)
	if h.HeapSizeLimit < lowMiB*mib || h.HeapSizeLimit >= highMiB*mib {
		t.Errorf("%s worker heap_size_limit = %d MiB, want %d..%d MiB", h.Runtime, h.HeapSizeLimit/mib, lowMiB, highMiB)
	}
	return h
}

func TestNodeWorkerGetsHeapLimit(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--heap", "300", "--", "node", "testdata/heap.js")
	// heap_size_limit is the old space plus the young generation.
	checkHeap(t, in, 300, 400)
}

func TestUserHeapSettingWins(t *testing.T) {
	needNode(t)
	in := start(t, "--workers", "1", "--heap", "300", "--", "node", "--max-old-space-size=200", "testdata/heap.js")
	checkHeap(t, in, 200, 300)
}

func TestNpmWrappedWorkerGetsHeapThroughNodeOptions(t *testing.T) {
	needNode(t)
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	wd, _ := os.Getwd()
	in := start(t, "--workers", "1", "--heap", "300", "--", "npm", "--prefix", filepath.Join(wd, "testdata", "npm-app"), "start")
	h := checkHeap(t, in, 300, 400)
	if !strings.Contains(h.NodeOptions, "--max-old-space-size=300") {
		t.Errorf("NODE_OPTIONS = %q, want the heap flag", h.NodeOptions)
	}
}

func TestDenoWorkersGetHeapLimit(t *testing.T) {
	deno := runtimeBin(t, "deno")
	t.Run("deno run", func(t *testing.T) {
		in := start(t, "--workers", "2", "--heap", "300", "--", deno, "run", "--allow-env", "--allow-net", "testdata/deno-heap.ts")
		checkHeap(t, in, 300, 450)
	})
	t.Run("deno serve", func(t *testing.T) {
		in := start(t, "--workers", "1", "--heap", "300", "--", deno, "serve", "testdata/deno-serve.ts")
		h := checkHeap(t, in, 300, 450)
		if h.Runtime != "deno serve" {
			t.Errorf("runtime = %q", h.Runtime)
		}
	})
}

func TestBunWorkersServeWithMemoryBudget(t *testing.T) {
	bun := runtimeBin(t, "bun")
	in := start(t, "--workers", "2", "--", bun, "testdata/heap.js")
	in.waitLog("worker ready", 20*time.Second)
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		var h heapInfo
		getJSON(t, "http://"+in.addr+"/", &h)
		if h.Runtime != "bun" || h.ForceRAM == "" {
			t.Fatalf("bun worker answered %+v, want runtime bun with BUN_JSC_forceRAMSize", h)
		}
		seen[h.ForceRAM] = true
	}
}

// TestAutoHeapInsideMemoryCgroup runs percore in a 1 GiB memory cgroup of
// its own and checks that the plan and the workers' heaps follow the limit.
func TestAutoHeapInsideMemoryCgroup(t *testing.T) {
	needNode(t)
	cg := testutil.NewMemoryCgroup(t, 1<<30)
	in := launchVia(t, cg.Wrapper(), "--workers", "2", "--", "node", "testdata/heap.js")
	plan := in.findLog("plan:", 20*time.Second)["@message"].(string)
	if !strings.Contains(plan, "memory=1.0GiB (cgroup") {
		t.Fatalf("plan line does not use the cgroup limit: %s", plan)
	}
	in.waitLog("worker ready", 20*time.Second)
	// 1 GiB and 2 workers: the documented sizing gives 213 MiB of old space.
	checkHeap(t, in, 213, 213+64)
}

// TestHeapSizeLimitWithLimitOnParentCgroup runs percore in a memory cgroup
// without a limit of its own, below a parent limited to 512 MiB, and checks
// that node and deno workers report the heap_size_limit the plan gives (old
// space plus young generation), not one sized from the host's memory.
func TestHeapSizeLimitWithLimitOnParentCgroup(t *testing.T) {
	const limit = 512 << 20
	mp := sizing.NewPlan(machine.Resources{CPUs: 2, Memory: limit}, sizing.Request{Memory: jsruntime.HeapCap, SemiSpace: true})
	want := int64(mp.HeapMB + mp.YoungGenMB())
	for _, rt := range []struct {
		name    string
		command func(t *testing.T) []string
	}{
		{"node", func(t *testing.T) []string { needNode(t); return []string{"node", "testdata/heap.js"} }},
		{"deno", func(t *testing.T) []string {
			return []string{runtimeBin(t, "deno"), "run", "--allow-env", "--allow-net", "testdata/deno-heap.ts"}
		}},
	} {
		t.Run(rt.name, func(t *testing.T) {
			command := rt.command(t)
			child := testutil.NewMemoryCgroup(t, limit).Child(t)
			in := launchVia(t, child.Wrapper(), append([]string{"--workers", "2", "--"}, command...)...)
			plan := in.findLog("plan:", 20*time.Second)["@message"].(string)
			if !strings.Contains(plan, "memory=512MiB (cgroup") {
				t.Fatalf("plan line does not use the parent's limit: %s", plan)
			}
			in.waitLog("worker ready", 30*time.Second)
			// Within 2 MiB of the plan: V8 may round its spaces to pages.
			checkHeap(t, in, want-2, want+2+1)
		})
	}
}

// TestRunWarnsOfUserHeapThatCannotFit runs percore in a 512 MiB memory
// cgroup with NODE_OPTIONS=--max-old-space-size=4096 and checks it warns
// that two workers of that heap cannot fit.
func TestRunWarnsOfUserHeapThatCannotFit(t *testing.T) {
	needNode(t)
	t.Setenv("NODE_OPTIONS", "--max-old-space-size=4096")
	cg := testutil.NewMemoryCgroup(t, 512<<20)
	in := launchVia(t, cg.Wrapper(), "--workers", "2", "--", "node", "testdata/heap.js")
	warn := in.findLog("NODE_OPTIONS --max-old-space-size=4096 does not fit", 20*time.Second)["@message"].(string)
	want := "NODE_OPTIONS --max-old-space-size=4096 does not fit 512MiB: 2 workers × (4096MiB heap + 48MiB young generation + 40MiB idle runtime) = 8368MiB, but 454MiB is left for workers"
	if !strings.HasPrefix(warn, want) {
		t.Errorf("warning %q, want it to start %q", warn, want)
	}
	in.waitLog("worker ready", 20*time.Second)
}

// TestPlanInCgroupNamespaceWithoutRemount runs "percore plan" in a cgroup
// namespace of its own (unshare -C) made inside a child of a cgroup limited
// to 512 MiB, with the cgroup filesystem left as it was mounted outside the
// namespace, and checks the plan reads the limit and says how it found it.
func TestPlanInCgroupNamespaceWithoutRemount(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare is not installed")
	}
	child := testutil.NewMemoryCgroup(t, 512<<20).Child(t)
	argv := append(child.Wrapper(), unshare, "-C", percoreBin, "plan")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Skipf("cannot run percore in a new cgroup namespace: %v: %s", err, out)
	}
	for _, want := range []string{"memory:   512MiB (cgroup", "outside percore's cgroup namespace", "found percore's cgroup at "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}
