// A Deno server as percore runs it with `deno run`: it reads PORT and HOST
// (hence --allow-env) and listens there (hence --allow-net).
const port = Number(Deno.env.get("PORT") ?? "8000");
const hostname = Deno.env.get("HOST") ?? "127.0.0.1";
const worker = Deno.env.get("PERCORE_WORKER_ID") ?? "0";

const server = Deno.serve({
  port,
  hostname,
  onListen: () => console.log(`deno worker ${worker} (pid ${Deno.pid}) listening on ${hostname}:${port}`),
}, () => Response.json({ hello: "deno", worker, pid: Deno.pid }));

// percore sends SIGTERM once this worker's requests are done. Deno.serve
// does not stop on its own under `deno run`: shut the server down (in-flight
// requests finish) and the process exits 0 when it has.
Deno.addSignalListener("SIGTERM", () => server.shutdown());
await server.finished;
