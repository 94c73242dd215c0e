// A worker that plays engine.io's part in a handshake and nothing more, for
// the session table test: a request on /socket.io/ without a sid opens a
// session, answered with an open packet naming a new random 20-character
// sid as engine.io 4 does; a request with a sid gets a noop packet ("6").
// It keeps no session: percore's table is what is measured.
const http = require("node:http");
const crypto = require("node:crypto");

const port = /^\d+$/.test(process.env.PORT) ? Number(process.env.PORT) : process.env.PORT;

http
  .createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let body = "6";
    if (!url.searchParams.get("sid")) {
      const sid = crypto.randomBytes(15).toString("base64url");
      body = `0{"sid":"${sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`;
    }
    res.writeHead(200, { "content-type": "text/plain; charset=UTF-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(port, "127.0.0.1");
