// A plain Node HTTP server, as percore runs it: it listens on the loopback
// port percore gives it in PORT and says which worker answered.
const http = require("node:http");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const worker = process.env.PERCORE_WORKER_ID || "0";

const server = http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ hello: "world", worker, pid: process.pid }) + "\n");
});

server.listen(port, host, () => {
  console.log(`worker ${worker} (pid ${process.pid}) listening on ${host}:${port}`);
});

// percore sends SIGTERM once this worker's requests are done; close the
// server so open keep-alive sockets end, then exit.
process.on("SIGTERM", () => server.close(() => process.exit(0)));
