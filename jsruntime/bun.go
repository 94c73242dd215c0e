package jsruntime

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// bunRAMSizeVar is the JavaScriptCore option, read by Bun from the
// environment, that sets the RAM size in bytes that the garbage collector
// plans for. It is not a cap: a heap may still grow past it.
const bunRAMSizeVar = "BUN_JSC_forceRAMSize"

// mib is the number of bytes in a MiB.
const mib = 1 << 20

// Bun is Bun. JavaScriptCore has no hard heap cap, so its workers are
// recycled by their resident size; the heap setting handed to it,
// BUN_JSC_forceRAMSize, is the RAM size its collector plans for, which makes
// collections come sooner. The variable reaches Bun through any wrapper
// (bunx, sh -c).
func Bun() Runtime {
	return Runtime{
		Name:        "bun",
		Binaries:    []string{"bun"},
		Wrappers:    []string{"bunx"},
		Memory:      RecycleByRSS,
		HeapSetting: bunRAMSizeVar,
		Prepare: func(w *Worker, o Options, l Launch) (Applied, error) {
			if l.Direct() && o.Preload != "" {
				w.Argv = slices.Insert(w.Argv, l.At+1, "--preload", o.Preload)
			}
			return prepareBun(w, o)
		},
		// Bun.serve and node:http serve the worker's port; the preload
		// wraps both.
		ProxyPreload: serveProxy,
		// Bun's node:net and node:http2 servers serve an inherited socket
		// with listen({fd}), so node's preload serves their apps; it
		// refuses Bun.serve, which takes no descriptor, and Bun's
		// node:http, which ignores one (bench/inherit shows both).
		DirectPreload: nodeDirect,
		Script:        bunScript,
	}
}

// bunScript returns the file that bun runs, directly or with bun run: the
// first word that is not an option, when it names a JavaScript or
// TypeScript file (bun run also runs package.json scripts).
func bunScript(args []string) string {
	for i, word := range args {
		if strings.HasPrefix(word, "-") || (i == 0 && word == "run") {
			continue
		}
		switch strings.ToLower(path.Ext(word)) {
		case ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx":
			return word
		}
		return ""
	}
	return ""
}

// prepareBun hands Bun the heap limit as the RAM size its collector plans
// for. The variable reaches Bun through any wrapper, so argv is not read.
func prepareBun(w *Worker, o Options) (Applied, error) {
	if value, ok := lookupVar(*w, bunRAMSizeVar); ok {
		bytes, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			// Bun refuses to start with a value it cannot read.
			return Applied{}, fmt.Errorf("read %s=%q: not a number of bytes", bunRAMSizeVar, value)
		}
		return Applied{UserHeapMB: int((bytes + mib - 1) / mib), UserHeapAt: bunRAMSizeVar}, nil
	}
	if o.HeapMB == 0 {
		return Applied{}, nil
	}
	value := strconv.FormatUint(uint64(o.HeapMB)*mib, 10)
	setVar(w, bunRAMSizeVar, value)
	return Applied{HeapFlag: bunRAMSizeVar + "=" + value + " (env)"}, nil
}
