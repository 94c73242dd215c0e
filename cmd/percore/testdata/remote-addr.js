// Test app for direct mode: it answers every request with the address its
// connection comes from, as the app sees it, and logs it. Like an app right
// behind a trusted proxy, it takes a loopback peer's X-Forwarded-For as the
// client's address. Like a framework made for PM2, it says 'ready' with
// process.send when it has a channel.
const http = require("node:http");

const worker = process.env.PERCORE_WORKER_ID;
const server = http.createServer((req, res) => {
  const remote = req.socket.remoteAddress;
  const xff = req.headers["x-forwarded-for"] || "";
  const client = remote === "127.0.0.1" && xff ? xff : remote;
  process.stdout.write(`remote ${remote} client ${client} worker ${worker}\n`);
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ remote, client, PERCORE_WORKER_ID: worker, pid: process.pid }));
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => process.send && process.send("ready"));
