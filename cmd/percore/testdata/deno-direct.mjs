// Test app for --mode direct under Deno: a node:http server on PORT.
// Routes: / {pid, worker}, /env {PERCORE_WORKER_ID}, /slow?ms=N.
// DENO_SERVE=1 serves PORT with Deno.serve instead, which direct mode
// refuses.
import http from "node:http";
import process from "node:process";

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;
const answer = (v) => JSON.stringify(v);

if (process.env.DENO_SERVE === "1") {
  Deno.serve({ port, hostname: "127.0.0.1" }, () => new Response(answer({ pid: process.pid, worker })));
} else {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    res.setHeader("content-type", "application/json");
    if (url.pathname === "/env") return res.end(answer({ PERCORE_WORKER_ID: worker }));
    if (url.pathname === "/slow") {
      return setTimeout(() => res.end(answer({ pid: process.pid, worker })), Number(url.searchParams.get("ms") || 1000));
    }
    res.end(answer({ pid: process.pid, worker }));
  });
  server.listen(port, "127.0.0.1");
}
