// A worker that breaks HTTP, for percore's chaos suite; no dependencies.
// Every route but / misbehaves on the raw socket, on every request:
//   /                 {pid, worker}: a good answer
//   /close            closes the connection before any response byte
//   /cut-head         sends part of a status line and header, then closes
//   /cut-body         sends a whole header (Content-Length: 100), 10 bytes
//                     of the body, then closes
//   /cut-stream       sends a header with Content-Length: 1 MiB and 256 KiB
//                     of the body, then closes: the answer has begun
//   /cut-chunked      sends a chunked answer's first chunks, then closes
//                     without the last chunk
//   /garbage          answers bytes that are not HTTP
//   /bad-status       answers with a status code that is not three digits
//   /bad-header       answers with a header line without a colon
//   /two-lengths      answers with two different Content-Length headers
//   /bad-chunk        answers with a chunk size that is not hexadecimal
//   /huge-header      answers with a 64 KiB header
//   /reset            resets the connection (RST) without an answer
const http = require("node:http");

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;

const raw = (sock, s) => {
  sock.write(s);
  sock.destroy();
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const sock = req.socket;
  req.on("data", () => {});
  req.on("end", () => {
    switch (url.pathname) {
      case "/close":
        return sock.destroy();
      case "/reset":
        return sock.resetAndDestroy();
      case "/cut-head":
        return raw(sock, "HTTP/1.1 200 OK\r\nContent-Ty");
      case "/cut-body":
        return raw(sock, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789");
      case "/cut-stream":
        sock.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n");
        sock.write(Buffer.alloc(256 << 10, 120));
        return setTimeout(() => sock.destroy(), 100);
      case "/cut-chunked":
        sock.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
        sock.write("5\r\nhello\r\n6\r\n world\r\n");
        return setTimeout(() => sock.destroy(), 100);
      case "/garbage":
        return raw(sock, "this is not HTTP at all\r\n\r\n");
      case "/bad-status":
        return raw(sock, "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok");
      case "/bad-header":
        return raw(sock, "HTTP/1.1 200 OK\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\nok");
      case "/two-lengths":
        return raw(sock, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokay!");
      case "/bad-chunk":
        return raw(sock, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
      case "/huge-header":
        return raw(sock, "HTTP/1.1 200 OK\r\nX-Huge: " + "h".repeat(64 << 10) + "\r\nContent-Length: 2\r\n\r\nok");
      default:
        res.setHeader("content-type", "application/json");
        return res.end(JSON.stringify({ pid: process.pid, worker }));
    }
  });
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
