package jsruntime

import "strconv"

// Runtime describes one JavaScript runtime that percore runs as workers:
// how a command line is recognised as starting it, how its memory is
// bounded, and what Prepare puts in a worker's argv and environment for it.
// Each runtime is one file of this package with a constructor (Node, Deno,
// Bun) and one row in Default; see docs/design/adding-a-runtime.md.
//
// A Runtime is a value: its slices and Prepare must not be changed once it
// is in a Registry.
type Runtime struct {
	// Name is the runtime's name, as --runtime takes it and the plan shows
	// it: lower case, such as "node".
	Name string
	// Binaries are the base names of the runtime's executables. A version
	// may follow a name (node20, node-20, nodejs18, node20.11, deno2, bun1.1),
	// and the name may come with a path.
	Binaries []string
	// Wrappers are commands that start the runtime themselves, such as
	// package managers (npm, pnpm) and package runners (bunx). Settings reach
	// the runtime through the environment. The package a wrapper runs with
	// npm exec, pnpm dlx or yarn dlx is looked into, as npx's is.
	Wrappers []string
	// InProcess are the Wrappers that run the app in their own process
	// (ts-node, for CommonJS), so that what they inherit reaches the app.
	// The others start the runtime as a child process of their own, which
	// inherits standard input, output and error only; see
	// Registry.ChildWrapper.
	InProcess []string
	// RunsPackages marks the runtime that npm packages' binaries
	// (node_modules/.bin/next) and npx run when the package is not another
	// runtime's binary. At most one runtime of a Registry has it.
	RunsPackages bool
	// Memory is how percore bounds a worker's memory.
	Memory MemoryPolicy
	// SemiSpace reports that Prepare passes Options.SemiSpaceMB with the
	// heap limit (V8's --max-semi-space-size), which pins the young
	// generation; without it percore computes no semi-space size.
	SemiSpace bool
	// HeapSetting names the setting of the user's own that limits the heap,
	// as the user writes it ("--max-old-space-size"), for the plan's
	// messages; "" when the runtime has none.
	HeapSetting string
	// Prepare puts percore's settings for one worker into w: the heap limit
	// of o.HeapMB MiB (0: none) where the runtime reads it, with the
	// semi-space size when SemiSpace, and whatever else the runtime needs to
	// serve on o.Port. l says where the command line starts the runtime. A
	// heap limit the user set is kept and reported in Applied. Prepare sets
	// variables with w.SetVar, which keeps env(1) in argv working, and need
	// not set PORT. nil: percore passes the runtime nothing.
	Prepare func(w *Worker, o Options, l Launch) (Applied, error)
	// DirectPreload is the script that makes the runtime's app serve the
	// public socket it inherits in --mode direct; Prepare loads it from
	// Options.Preload before the app. It is CommonJS, written to a .cjs
	// file (Deno reads a .js file as an ES module). nil: the runtime
	// cannot, and --mode direct is refused with NoDirect.
	DirectPreload []byte
	// DirectHandoff says that the runtime's DirectPreload takes connections
	// passed over Node's IPC channel (NODE_CHANNEL_FD, see nodeipc): the
	// connections queued for a slot without a serving worker then reach
	// another worker as themselves. Without it they wait for the slot's
	// next worker.
	DirectHandoff bool
	// ProxyPreload is the script that keeps the proxy's promises inside a
	// worker in proxy mode: the app's listen(PORT) on loopback only, each
	// request's token (proxy.TokenHeader) echoed in its answer, and no
	// bytes written outside a response. Prepare loads it from
	// Options.Preload before the app. nil: the runtime has none, and
	// percore's proxy gives each of its requests a connection of its own,
	// since it cannot prove which request an answer is for.
	ProxyPreload []byte
	// UnixUpstream says that ProxyPreload makes the app's listen(PORT)
	// listen on a Unix socket percore passes as an inherited descriptor
	// (supervisor.EnvUpstreamFD), PORT staying a number for the app.
	UnixUpstream bool
	// NoDirect says why the runtime cannot run in --mode direct.
	NoDirect string
	// NoDirectCommand says why a command of a runtime that has a
	// DirectPreload cannot run in --mode direct, given the words after the
	// runtime's binary (such as deno serve, whose server takes no
	// descriptor); "" when it can. nil: every command can.
	NoDirectCommand func(args []string) string
	// Script returns the script that the runtime runs, given the words
	// after its binary, as they are written; "" when there is none (a REPL,
	// an eval). nil: percore does not look for one.
	Script func(args []string) string
}

// noDirectOther is why a command of no runtime percore knows cannot run in
// --mode direct.
const noDirectOther = "percore cannot make an app of an unknown runtime serve the socket it inherits; " +
	"use --mode proxy, or --runtime node for a Node app started by a command percore does not recognise"

// String returns the runtime's name; "other" for the zero Runtime.
func (rt Runtime) String() string {
	if rt.Name == "" {
		return otherName
	}
	return rt.Name
}

// otherName is the name of the runtime of a command that runs none of the
// runtimes percore knows.
const otherName = "other"

// Other is the runtime of a command that runs none of the runtimes a
// Registry knows: percore runs it, passes it no heap setting, and bounds
// it by its memory budget only where memory is limited.
func Other() Runtime {
	return Runtime{Name: otherName, Memory: NoHeapLimit, NoDirect: noDirectOther}
}

// IsOther reports whether rt is Other (or the zero Runtime).
func (rt Runtime) IsOther() bool {
	return rt.Name == "" || rt.Name == otherName
}

// MemoryPolicy is how percore bounds a runtime's memory.
type MemoryPolicy int

// The memory policies.
const (
	// NoHeapLimit is for a runtime that takes no heap setting from
	// percore: its workers are bounded by their memory budget only.
	NoHeapLimit MemoryPolicy = iota
	// HeapCap is for a runtime that stops its heap at the limit it is given
	// (V8's old space): percore sizes the heap to the worker's budget, and a
	// worker that fills it fails like the runtime does, before the kernel's
	// OOM killer is reached.
	HeapCap
	// RecycleByRSS is for a runtime with no hard heap cap (Bun's
	// JavaScriptCore): its setting only guides the collector, and percore
	// recycles a worker whose resident size passes the worker's budget,
	// wherever memory is limited or not.
	RecycleByRSS
)

// String returns "no heap limit", "heap cap" or "recycle by RSS".
func (m MemoryPolicy) String() string {
	switch m {
	case NoHeapLimit:
		return "no heap limit"
	case HeapCap:
		return "heap cap"
	case RecycleByRSS:
		return "recycle by RSS"
	}
	return "MemoryPolicy(" + strconv.Itoa(int(m)) + ")"
}

// Launch says where a command line starts a runtime, for the runtime's
// Prepare.
type Launch struct {
	// Words is the command in which the runtime's binary was found: the
	// worker's argv, or the words of one command of a shell script.
	Words []string
	// At is the index in Words of the runtime's binary, or -1 when the
	// binary is not on the command line (a wrapper such as npm starts the
	// runtime itself, or the runtime was named with --runtime).
	At int
	// InArgv reports that Words is the worker's argv, so that the
	// runtime's own flags can be inserted into it after Words[At].
	InArgv bool
}

// Binary reports whether the runtime's binary itself is in Words.
func (l Launch) Binary() bool {
	return l.At >= 0
}

// Direct reports whether the worker's argv runs the runtime's binary
// itself, so that flags can be put on its command line.
func (l Launch) Direct() bool {
	return l.InArgv && l.Binary()
}
