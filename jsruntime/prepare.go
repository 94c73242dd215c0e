package jsruntime

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// maxPort is the highest TCP port number.
const maxPort = 65535

// Worker is what one worker needs to launch.
type Worker struct {
	Argv []string // argv to exec (argv[0] as given by the user)
	Env  []string // the full environment (KEY=VALUE) to pass
}

// Options are percore's per-worker settings for Prepare.
type Options struct {
	// Runtime is the runtime the worker runs; the zero Runtime is Other.
	Runtime Runtime
	HeapMB  int // the heap limit in MiB (V8's old space); 0 = pass nothing
	// SemiSpaceMB is the V8 semi-space size in MiB passed with HeapMB
	// (node and deno), so that the young generation, and heap_size_limit
	// with it, do not depend on the memory V8 believes the machine has; 0 =
	// pass none. A semi-space size of the user's own is kept.
	SemiSpaceMB int
	Port        int // the worker's loopback port (already in Env as PORT=...; some runtimes need it as a flag too)
	// Preload is the path of the runtime's DirectPreload (--mode direct) or
	// ProxyPreload (--mode proxy) written to disk; "" for none.
	Preload string
}

// Applied says what Prepare did, for the plan line and logs.
type Applied struct {
	// HeapFlag is the heap setting Prepare added and where, as
	// "<setting> (<where>)": "--max-old-space-size=384 (argv)",
	// "--max-old-space-size=384 (NODE_OPTIONS)",
	// "--v8-flags=--max-old-space-size=384 (argv)",
	// "--max-old-space-size=384 (DENO_V8_FLAGS)",
	// "BUN_JSC_forceRAMSize=402653184 (env)"; "" when it added none.
	HeapFlag string
	// UserHeapMB is the user's own heap setting in MiB, which Prepare kept
	// (it wins). It is > 0 when one was found, or 0 with UserHeapAt set
	// when the user set 0, V8's "no limit".
	UserHeapMB int
	// UserHeapAt says where the user's own setting was found: "argv",
	// "NODE_OPTIONS", "DENO_V8_FLAGS" or "BUN_JSC_forceRAMSize"; "" for none.
	UserHeapAt string
	// PortFlag is the port flag Prepare added to argv, as "--port=41234"
	// for deno serve, which does not read PORT; "" when it added none.
	PortFlag string
	// HostFlag is the host flag Prepare added to argv, "--host=127.0.0.1"
	// for deno serve, which would otherwise listen on every interface.
	HostFlag string
	// Warning says why the worker may not work under percore as given
	// (such as deno run without --allow-env, which cannot read PORT); "" when
	// nothing was noticed. Prepare still returns the worker.
	Warning string
}

// Prepare is Registry.Prepare with the runtimes of Default.
func Prepare(w Worker, o Options) (Worker, Applied, error) {
	return Default().Prepare(w, o)
}

// Prepare returns the argv and env for one worker of runtime o.Runtime:
// the heap limit and, where the runtime needs it, the port, put where the
// runtime reads them (see the package documentation and the runtime's
// Prepare). The user's own heap setting is kept. The worker sees
// PORT=<o.Port> in its environment, also when env(1) in argv sets PORT.
// Prepare does not modify its inputs.
//
// When o.Runtime is not the runtime Detect finds in argv (the user named
// the runtime), settings go into the environment, which reaches the runtime
// through any wrapper.
func (r Registry) Prepare(w Worker, o Options) (Worker, Applied, error) {
	if err := o.check(); err != nil {
		return Worker{}, Applied{}, fmt.Errorf("prepare worker: %w", err)
	}
	if len(w.Argv) == 0 {
		return Worker{}, Applied{}, errors.New("prepare worker: empty command")
	}
	out := Worker{Argv: slices.Clone(w.Argv), Env: slices.Clone(w.Env)}
	l := r.locate(out.Argv)
	if !l.found || l.rt.Name != o.Runtime.Name {
		l = launch{rt: o.Runtime, Launch: Launch{At: -1}}
	}
	var a Applied
	if o.Runtime.Prepare != nil {
		var err error
		if a, err = o.Runtime.Prepare(&out, o, l.Launch); err != nil {
			return Worker{}, Applied{}, fmt.Errorf("prepare %s worker: %w", o.Runtime, err)
		}
	}
	if o.Port > 0 {
		setVar(&out, "PORT", strconv.Itoa(o.Port))
	}
	return out, a, nil
}

// SetVar makes the command in w.Argv see name=value: in w.Env, or on the
// command line of an env(1) at the front of argv that would set, unset or
// clear name.
func (w *Worker) SetVar(name, value string) {
	setVar(w, name, value)
}

// LookupVar returns the value of name as the command in w.Argv sees it:
// env(1) at the front of argv may set, unset or clear it.
func (w Worker) LookupVar(name string) (string, bool) {
	return lookupVar(w, name)
}

// check reports options that Prepare cannot apply.
func (o Options) check() error {
	switch {
	case o.HeapMB < 0:
		return fmt.Errorf("heap limit %d MiB is negative", o.HeapMB)
	case o.SemiSpaceMB < 0:
		return fmt.Errorf("semi-space size %d MiB is negative", o.SemiSpaceMB)
	case o.Port < 0 || o.Port > maxPort:
		return fmt.Errorf("port %d is out of range 0-%d", o.Port, maxPort)
	}
	return nil
}
