// Usage: node cluster.js APP.js
//
// The node:cluster baseline: the primary forks BENCH_WORKERS (default 2)
// workers that run APP.js and share its port. On Linux the primary accepts
// connections and hands them to workers in turn (cluster.SCHED_RR, Node's
// default); requests on a kept-alive connection stay with its worker.
"use strict";
const cluster = require("node:cluster");
const path = require("node:path");

const n = Number(process.env.BENCH_WORKERS || 2);
cluster.setupPrimary({ exec: path.resolve(process.argv[2] || path.join(__dirname, "hello.js")) });
for (let i = 0; i < n; i++) cluster.fork();

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM");
  setTimeout(() => process.exit(0), 2000).unref();
}
cluster.on("exit", () => {
  if (Object.keys(cluster.workers).length === 0) process.exit(0);
});
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
