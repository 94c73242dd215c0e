// Shared by the benchmark apps: an HTTP server on PORT/HOST, as percore,
// the cluster module and PM2 all start it, and a CPU burner whose loop count
// per millisecond is measured once (by calibrate.js) so that every
// configuration does exactly the same work per request.
"use strict";
const http = require("node:http");

let sink = 0;

// spin runs n rounds of a small integer recurrence the JIT cannot drop.
function spin(n) {
  let x = sink;
  for (let i = 0; i < n; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  sink = x;
}

// calibrate measures how many spin rounds take one millisecond of this
// process's CPU time (user + system), over about cpuMs milliseconds.
function calibrate(cpuMs) {
  spin(200000); // let the JIT optimise spin first
  const chunk = 20000;
  const start = process.cpuUsage();
  let rounds = 0;
  let used = 0;
  for (let i = 0; i < 100000 && used < cpuMs * 1000; i++) {
    spin(chunk);
    rounds += chunk;
    const u = process.cpuUsage(start);
    used = u.user + u.system;
  }
  return rounds / (used / 1000);
}

let perMs = Number(process.env.BENCH_LOOPS_PER_MS || 0);

// burn uses about ms milliseconds of CPU.
function burn(ms) {
  if (!(perMs > 0)) perMs = calibrate(50);
  spin(Math.round(perMs * ms));
}

// serve answers every request with handle(req)'s text.
function serve(handle) {
  // PORT is a number, or a socket path under percore --upstream unix.
  const env = process.env.PORT || "3000";
  const port = /^\d+$/.test(env) ? Number(env) : env;
  const host = process.env.HOST || "127.0.0.1";
  const server = http.createServer((req, res) => {
    const body = handle(req);
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  if (typeof port === "number") server.listen(port, host);
  else server.listen(port);
  // Stop at once: the benchmark never stops a configuration mid-request.
  // BENCH_SIGNALS=default leaves SIGTERM and SIGINT to the runtime, as in
  // an app with no handler of its own (bench/reload).
  if (process.env.BENCH_SIGNALS !== "default") {
    process.on("SIGTERM", () => process.exit(0));
    process.on("SIGINT", () => process.exit(0));
  }
  return server;
}

module.exports = { spin, calibrate, burn, serve, sink: () => sink };
