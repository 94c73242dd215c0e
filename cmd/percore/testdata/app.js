// Test app for percore's integration tests. Routes:
//   /            {pid, worker, count}
//   /headers     the request headers as JSON
//   /slow?ms=N   answers after N ms
//   /env         selected environment variables
const http = require("node:http");

const port = Number(process.env.PORT);
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
      return setTimeout(() => json({ pid: process.pid, worker }), Number(url.searchParams.get("ms") || 1000));
    case "/env":
      return json({
        PORT: process.env.PORT, HOST: process.env.HOST,
        PERCORE_WORKER_ID: process.env.PERCORE_WORKER_ID,
        NODE_APP_INSTANCE: process.env.NODE_APP_INSTANCE,
        PERCORE_WORKER_COUNT: process.env.PERCORE_WORKER_COUNT,
        execArgv: process.execArgv,
      });
    default:
      return json({ pid: process.pid, worker });
  }
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
