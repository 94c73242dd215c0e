// Misbehaving worker for percore's chaos suite, on node:http; no
// dependencies. Every answer's body is "for PATH ü\n" (ü is two bytes in
// UTF-8), so a client can check that the answer it got is its own.
//   CHAOS_FAULT=late   one fake response per process, written to the
//                      connection 2 ms after a random one of its first 100
//                      answers, through the socket the answer went out on
//   CHAOS_FAULT=length every answer's Content-Length is the body's length
//                      in characters, one byte short of what node writes
//                      (node writes the whole body unless strictContentLength)
const http = require("node:http");

const fault = process.env.CHAOS_FAULT || "late";
const injected = "HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nINJECTED\n";
const fakeAt = 1 + Math.floor(Math.random() * 100);
let answered = 0;

const server = http.createServer((req, res) => {
  const body = "for " + req.url + " \u00fc\n";
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  if (fault === "length") res.setHeader("Content-Length", body.length);
  const socket = res.socket;
  res.end(body);
  answered++;
  if (fault === "late" && answered === fakeAt) {
    setTimeout(() => {
      try {
        socket.write(injected);
      } catch {}
    }, 2);
  }
});
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
