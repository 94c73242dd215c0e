// Test app for --mode direct under Bun: a node:net server on PORT that
// answers each HTTP/1.1 request with {pid, worker} (/, /env) and closes
// the connection. Bun serves the socket it inherits with node:net (and
// node:http2), not with Bun.serve or node:http: SERVER=bun-serve or
// SERVER=node-http serves PORT with those instead, which direct mode
// refuses.
const net = require("node:net");

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;
const body = JSON.stringify({ pid: process.pid, worker, PERCORE_WORKER_ID: worker });

if (process.env.SERVER === "bun-serve") {
  Bun.serve({ port, hostname: "127.0.0.1", fetch: () => new Response(body) });
} else if (process.env.SERVER === "node-http") {
  require("node:http").createServer((req, res) => res.end(body)).listen(port, "127.0.0.1");
} else {
  net.createServer((socket) => {
    let head = "";
    socket.on("error", () => {});
    socket.on("data", (d) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.end("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + body.length +
        "\r\nConnection: close\r\n\r\n" + body);
    });
  }).listen(port, "127.0.0.1");
}
