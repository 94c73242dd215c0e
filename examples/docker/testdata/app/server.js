// The app the container test runs under percore, built with
// examples/docker/Dockerfile. Besides GET /, it has what the test needs to
// make happen inside the container:
//   GET /slow?ms=N     answers after N ms (a request in flight at a stop);
//                      logs "slow request" when it arrives
//   GET /orphans?n=N   starts N shells that each leave a `sleep 0.1` behind
//                      and exit: N orphans for PID 1 to reap
//   GET /leak          keeps 4 MiB more in Buffers every 50 ms, outside the
//                      JavaScript heap, until the worker is stopped
const http = require("node:http");
const { spawn } = require("node:child_process");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const worker = process.env.PERCORE_WORKER_ID ?? "";

function orphans(n, done) {
  let left = n;
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const sh = spawn("/bin/sh", ["-c", "sleep 0.1 &"], { stdio: "ignore" });
    sh.on("error", () => failed++);
    sh.on("close", () => {
      if (--left === 0) done(failed);
    });
  }
}

const kept = [];
let leaking = null;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://app");
  const reply = (body) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ worker, pid: process.pid, ...body }) + "\n");
  };
  switch (url.pathname) {
    case "/slow": {
      const ms = Number(url.searchParams.get("ms") || 1000);
      console.log(`slow request: answering in ${ms} ms`);
      setTimeout(() => reply({ slept: ms }), ms);
      return;
    }
    case "/orphans":
      orphans(Number(url.searchParams.get("n") || 200), (failed) => reply({ failed }));
      return;
    case "/leak":
      leaking ??= setInterval(() => kept.push(Buffer.alloc(4 << 20, 1)), 50);
      reply({ leaking: true });
      return;
    default:
      reply({ hello: "container", uid: process.getuid() });
  }
});

server.listen(port, host);

process.on("SIGTERM", () => {
  clearInterval(leaking);
  server.close(() => process.exit(0));
});
