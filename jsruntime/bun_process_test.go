//go:build unix

package jsruntime

import (
	"encoding/json"
	"strings"
	"testing"
)

// bunPortScript prints the PORT bun reads.
const bunPortScript = `console.log(JSON.stringify({ port: process.env.PORT }));
`

// bunChurnScript keeps about 60 MiB of objects alive while it makes and
// drops many more, then prints its peak resident size in MiB.
const bunChurnScript = `const fs = require("node:fs");
const live = [];
for (let i = 0; i < 600000; i++) live.push({ i, s: "k" + i });
let ring = [];
for (let r = 0; r < 120; r++) {
  const batch = [];
  for (let j = 0; j < 20000; j++) batch.push({ j, r, s: "v" + j + ":" + r, a: [j, r] });
  ring.push(batch);
  if (ring.length > 20) ring.shift();
}
const status = fs.readFileSync("/proc/self/status", "utf8");
const peakKiB = Number(status.match(/VmHWM:\s+(\d+)/)[1]);
console.log(JSON.stringify({ peakMiB: peakKiB / 1024, kept: live.length + ring.length }));
`

// bunHeapMB is the limit the bun process tests ask for.
const bunHeapMB = 300

func TestBunProcessReadsPort(t *testing.T) {
	bun := toolBinary(t, "bun")
	dir := writeFiles(t, map[string]string{"port.js": bunPortScript})
	port := freePort(t)
	for _, argv := range [][]string{
		{bun, "port.js"},
		{bun, "run", "port.js"},
		{"sh", "-c", bun + " port.js"},
	} {
		prepared, applied := prepare(t, Worker{Argv: argv, Env: baseEnv(port)}, Options{Runtime: Detect(argv), HeapMB: bunHeapMB, Port: port})
		if applied.HeapFlag != "BUN_JSC_forceRAMSize=314572800 (env)" {
			t.Errorf("%q: HeapFlag = %q", argv, applied.HeapFlag)
		}
		if got := run(t, prepared, dir); got.Port != itoa(port) {
			t.Errorf("%q: PORT = %q, want %d", argv, got.Port, port)
		}
	}
}

// TestBunProcessRAMSizeLowersPeak measures what BUN_JSC_forceRAMSize does:
// Prepare sets it because it lowers the peak resident size of a program
// that makes much garbage. It is not a cap, so the check is a comparison.
func TestBunProcessRAMSizeLowersPeak(t *testing.T) {
	if testing.Short() {
		t.Skip("measures bun's memory for a few seconds")
	}
	bun := toolBinary(t, "bun")
	dir := writeFiles(t, map[string]string{"churn.js": bunChurnScript})
	port := freePort(t)
	w := Worker{Argv: []string{bun, "churn.js"}, Env: baseEnv(port)}
	prepared, _ := prepare(t, w, Options{Runtime: Bun(), HeapMB: bunHeapMB, Port: port})
	plain, _ := prepare(t, w, Options{Runtime: Bun(), Port: port})

	without, with := peakMiB(t, plain, dir), peakMiB(t, prepared, dir)
	t.Logf("peak RSS: %.0f MiB without BUN_JSC_forceRAMSize, %.0f MiB with it (%.0f%%)", without, with, 100*with/without)
	if with >= 0.9*without {
		t.Errorf("BUN_JSC_forceRAMSize=%d MiB did not lower the peak RSS (%.0f MiB with, %.0f MiB without): Prepare should stop setting it",
			bunHeapMB, with, without)
	}
}

// peakMiB runs the churn program and returns the peak RSS it printed.
func peakMiB(t *testing.T, w Worker, dir string) float64 {
	t.Helper()
	out, err := runRaw(t, w, dir)
	if err != nil {
		t.Fatalf("%q: %v\n%s", w.Argv, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got struct {
		PeakMiB float64 `json:"peakMiB"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil || got.PeakMiB <= 0 {
		t.Fatalf("%q printed %q: %v", w.Argv, out, err)
	}
	return got.PeakMiB
}
