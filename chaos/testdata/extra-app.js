// Misbehaving worker for percore's chaos suite, on node:net; no
// dependencies. Every answer's body is "for PATH\n", so a client can check
// that the answer it got is its own. GET requests only, keep-alive.
//   /extra/...   the body, then more bytes than its Content-Length says
//                ("INJECTED extra\n") in the same write, as a worker does
//                that sets Content-Length to a UTF-8 string's length
//   /late/...    the right answer, then CHAOS_LATE_MS later (default 3) a
//                whole second response with X-Injected: yes, when no other
//                request has come in on the connection meanwhile (checked
//                after a poll for I/O, so that a request already on its way
//                is seen: bytes that meet a request on the way are the one
//                case no HTTP/1.1 proxy can tell from its answer)
//   anything else  the right answer
const net = require("node:net");

const lateMs = Number(process.env.CHAOS_LATE_MS || 3);
const injected = "HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nINJECTED\n";

function answer(path) {
  const body = "for " + path + "\n";
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + Buffer.byteLength(body) + "\r\n\r\n" + body;
}

const server = net.createServer((socket) => {
  socket.on("error", () => {});
  let buf = "";
  let seen = 0; // requests read on this connection
  socket.on("data", (d) => {
    buf += d.toString("latin1");
    for (;;) {
      const i = buf.indexOf("\r\n\r\n");
      if (i < 0) return;
      const head = buf.slice(0, i);
      buf = buf.slice(i + 4);
      seen++;
      const path = head.split("\r\n")[0].split(" ")[1] || "/";
      if (path.startsWith("/extra/")) {
        socket.write(answer(path) + "INJECTED extra\n", "latin1");
      } else if (path.startsWith("/late/")) {
        socket.write(answer(path), "latin1");
        const at = seen;
        setTimeout(() => setImmediate(() => {
          if (seen === at && buf.length === 0 && !socket.destroyed) socket.write(injected, "latin1");
        }), lateMs);
      } else {
        socket.write(answer(path), "latin1");
      }
    }
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
