// The same server for `deno serve`: percore passes --port and --host, so
// the module only exports its handler. `deno serve` stops gracefully on
// SIGTERM by itself: in-flight requests finish and it exits 0.
const worker = Deno.env.get("PERCORE_WORKER_ID") ?? "0";

export default {
  fetch() {
    return Response.json({ hello: "deno serve", worker, pid: Deno.pid });
  },
} satisfies Deno.ServeDefaultExport;
