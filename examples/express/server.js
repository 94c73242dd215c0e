// An Express app as percore runs it: each worker listens on the loopback
// port percore gives it in PORT. Nothing in the app knows about the others.
const express = require("express");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const worker = process.env.PERCORE_WORKER_ID || "0";

const app = express();

app.get("/", (req, res) => {
  res.json({ hello: "express", worker, pid: process.pid });
});

const server = app.listen(port, host, (err) => {
  if (err) throw err;
  console.log(`express worker ${worker} (pid ${process.pid}) listening on ${host}:${port}`);
});

// percore sends SIGTERM once this worker's requests are done: stop
// listening, let idle keep-alive sockets close, then exit 0.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
