// Package jsruntime knows the JavaScript runtimes that percore runs as
// workers: it tells from a command line whether it starts Node, Deno or Bun,
// and it rewrites one worker's argv and environment so that the runtime
// honours percore's heap limit and port.
//
// Each runtime is described once, by a Runtime built in its own file (Node,
// Deno, Bun): how a command is recognised as starting it, its memory policy
// (a hard heap cap, or recycling by resident size), and its Prepare, which
// puts its settings in place. A Registry lists the runtimes; Default is
// percore's list, and a caller may build its own with NewRegistry. Detect and
// Prepare use Default; Registry.Detect and Registry.Prepare use a list of
// the caller's.
//
// # Where a setting goes
//
// Node run directly gets --max-old-space-size=<MB> right after the node
// binary, before the script, where node reads it and the app never sees it,
// and --max-semi-space-size=<MB> beside it when a semi-space size is given
// (Options.SemiSpaceMB), which pins the young generation.
// Behind a wrapper that starts node itself (npm, npx, pnpm, yarn, corepack,
// sh -c) the flag goes into NODE_OPTIONS, which every node child reads.
//
// Deno run directly (deno run, deno serve, deno eval or deno <script>) gets
// --v8-flags=--max-old-space-size=<MB>[,--max-semi-space-size=<MB>] right
// after its subcommand, or those flags added to a --v8-flags of the user's; behind a
// wrapper (deno task, sh -c) it gets DENO_V8_FLAGS instead. deno serve does
// not read PORT, so it is given --port=<port> and --host=127.0.0.1.
//
// Bun runs on JavaScriptCore, which has no hard heap cap. Bun is handed
// BUN_JSC_forceRAMSize=<bytes>, the RAM size its collector plans for: it makes
// collections come sooner and keeps the peak resident size lower, but it
// does not stop a heap from growing past it. percore bounds Bun workers by
// their resident size from outside.
//
// A limit that the user set already (in argv, NODE_OPTIONS, --v8-flags,
// DENO_V8_FLAGS or BUN_JSC_forceRAMSize) is kept and reported, never
// overridden.
//
// Commands run through env(1) are looked through: a variable that env
// would set, unset or clear for the command is set on env's command line
// instead of in the environment, so that the runtime still sees it.
//
// The package is pure: it reads no files, starts no process and holds no
// state (a Registry is a value, built when asked for). It is not a process supervisor, a shell parser (it splits a sh -c
// script only far enough to find the first word of each command) or a
// package.json reader: npm start is taken to run node.
package jsruntime
