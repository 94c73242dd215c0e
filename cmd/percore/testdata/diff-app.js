// Recording app for the differential tests; no dependencies. Every request
// it receives is appended to the file named by $DIFF_LOG as one JSON line
// when its head arrives ({ev:"head", method, url, version, headers}) and
// another when its body has ended ({ev:"end", url, shape, body}) or was cut
// ({ev:"aborted"}). The "shape" field is the request's X-Shape header. It
// answers {ok, url, bytes}. It listens on $PORT (0: any free port) and prints
// "listening PORT" once it does.
const http = require("node:http");
const fs = require("node:fs");

const log = process.env.DIFF_LOG;
const write = (v) => fs.appendFileSync(log, JSON.stringify(v) + "\n");

const server = http.createServer((req, res) => {
  const shape = req.headers["x-shape"] || "";
  write({ ev: "head", pid: process.pid, method: req.method, url: req.url, version: req.httpVersion,
    shape, headers: req.rawHeaders });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("aborted", () => write({ ev: "aborted", url: req.url, shape }));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("latin1");
    write({ ev: "end", url: req.url, shape, body });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ok: true, url: req.url, bytes: body.length }));
  });
});
server.on("clientError", (err, socket) => {
  write({ ev: "client-error", code: err.code || String(err) });
  if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  else socket.destroy();
});
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log("listening " + server.address().port);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
