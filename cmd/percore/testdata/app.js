// Test app for percore's integration tests. Routes:
//   /            {pid, worker, count}
//   /headers     the request headers as JSON
//   /slow?ms=N   answers after N ms; &say=S writes S and a newline to
//                stdout as the request arrives
//   /env         selected environment variables
//   /grow?mb=N   keeps N MiB more memory alive
//   /orphan      starts a shell that leaves an orphaned sleep behind
//   /block       blocks the event loop for good
//   /log?line=S  writes S and a newline to stdout
//   /exit        exits with code 9
// START_DELAY_MS=N makes it listen only N ms after it started.
// TERM_MARK=S makes it print "S slow PID" when a /slow request starts and
// "S term PID" when SIGTERM arrives.
const http = require("node:http");
const { spawn } = require("node:child_process");
const kept = [];

// PORT is a loopback port, or a Unix socket's path under --upstream unix.
const port = /^\d+$/.test(process.env.PORT) ? Number(process.env.PORT) : process.env.PORT;
const worker = process.env.PERCORE_WORKER_ID;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const json = (v) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(v));
  };
  switch (url.pathname) {
    case "/headers":
      return json({ headers: req.headers, rawHeaders: req.rawHeaders });
    case "/slow":
      if (url.searchParams.has("say")) process.stdout.write(url.searchParams.get("say") + "\n");
      if (process.env.TERM_MARK) process.stdout.write(`${process.env.TERM_MARK} slow ${process.pid}\n`);
      return setTimeout(() => json({ pid: process.pid, worker }), Number(url.searchParams.get("ms") || 1000));
    case "/env":
      return json({
        PORT: process.env.PORT, HOST: process.env.HOST,
        PERCORE_WORKER_ID: process.env.PERCORE_WORKER_ID,
        NODE_APP_INSTANCE: process.env.NODE_APP_INSTANCE,
        PERCORE_WORKER_COUNT: process.env.PERCORE_WORKER_COUNT,
        execArgv: process.execArgv,
      });
    case "/grow": {
      const mb = Number(url.searchParams.get("mb") || 10);
      const b = Buffer.alloc(mb << 20, 1);
      kept.push(b);
      return json({ pid: process.pid, rss: process.memoryUsage().rss });
    }
    case "/orphan": {
      const sh = spawn("sh", ["-c", "sleep 0.3 & echo $!"], { stdio: ["ignore", "pipe", "ignore"] });
      let out = "";
      sh.stdout.on("data", (d) => (out += d));
      sh.on("exit", () => json({ orphan: Number(out.trim()), pid: process.pid }));
      return;
    }
    case "/block":
      json({ pid: process.pid, blocking: true });
      return setTimeout(() => { for (;;) {} }, 50);
    case "/log":
      process.stdout.write(url.searchParams.get("line") + "\n");
      return json({ pid: process.pid });
    case "/exit":
      json({ pid: process.pid });
      return setTimeout(() => process.exit(9), 20);
    default:
      return json({ pid: process.pid, worker });
  }
});
const listen = () => (typeof port === "number" ? server.listen(port, "127.0.0.1") : server.listen(port));
const delay = Number(process.env.START_DELAY_MS || 0);
if (delay > 0) setTimeout(listen, delay);
else listen();
process.on("SIGTERM", () => {
  if (process.env.TERM_MARK) process.stdout.write(`${process.env.TERM_MARK} term ${process.pid}\n`);
  server.close(() => process.exit(0));
});
