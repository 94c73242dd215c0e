// A Bun server as percore runs it: it listens on the loopback port percore
// gives it in PORT.
const port = Number(process.env.PORT ?? "3000");
const hostname = process.env.HOST ?? "127.0.0.1";
const worker = process.env.PERCORE_WORKER_ID ?? "0";

const server = Bun.serve({
  port,
  hostname,
  fetch() {
    return Response.json({ hello: "bun", worker, pid: process.pid });
  },
});
console.log(`bun worker ${worker} (pid ${process.pid}) listening on ${hostname}:${server.port}`);

// percore sends SIGTERM once this worker's requests are done. Without a
// handler Bun dies of the signal; server.stop() stops listening and resolves
// when in-flight requests have finished.
process.on("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
