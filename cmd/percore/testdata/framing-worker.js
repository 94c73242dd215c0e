// A worker that gets HTTP framing wrong on purpose, written on a raw `net`
// server so that nothing corrects it. Keep-alive; one request at a time per
// connection. Routes:
//   /extra           Content-Length: 3 + "ok\n", then 50 ms later a second
//                    whole response with X-Injected: yes on the same socket
//   /extra-same      Content-Length: 3, but "ok\n", 40000 more bytes and a
//                    second response in the same write
//   /switch          101 Switching Protocols to a plain request
//   /status-099      status line "099"
//   /status-600      status line "600"
//   /trailers        chunked body "hello world\n" in three chunks, then the
//                    trailer fields X-Checksum and Set-Cookie
//   /trailers-announced  the same, with "Trailer: X-Checksum, Set-Cookie"
//   /interim         103 Early Hints and 100 Continue before the answer
//   /no-type         a body without Content-Type
//   /request-head    the request head as received, as the body
//   anything else    "for <path>\n"
const net = require("node:net");

const port = Number(process.env.PORT);

function answer(body, extra = "") {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const injected = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Injected: yes\r\nContent-Length: 9\r\n\r\nINJECTED\n";

const chunked = (announce) =>
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n" +
  (announce ? "Trailer: X-Checksum, Set-Cookie\r\n" : "") +
  "\r\n6\r\nhello \r\n5\r\nworld\r\n1\r\n\n\r\n0\r\nX-Checksum: abc123\r\nSet-Cookie: sid=trailer\r\n\r\n";

function respond(sock, head) {
  const path = head.split(" ")[1] || "/";
  switch (path) {
    case "/extra":
      sock.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
      setTimeout(() => sock.writable && sock.write(injected), 50);
      return;
    case "/extra-same":
      return sock.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n" +
        "x".repeat(40000) + "\r\n" + injected);
    case "/switch":
      return sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    case "/status-099":
      return sock.write("HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nno");
    case "/status-600":
      return sock.write("HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nno");
    case "/trailers":
      return sock.write(chunked(false));
    case "/trailers-announced":
      return sock.write(chunked(true));
    case "/interim":
      return sock.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
        "HTTP/1.1 100 Continue\r\n\r\n" + answer("final\n"));
    case "/no-type":
      return sock.write("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nno type\n");
    case "/request-head":
      return sock.write(answer(head));
    default:
      return sock.write(answer(`for ${path}\n`));
  }
}

net.createServer((sock) => {
  let buf = Buffer.alloc(0);
  let need = 0; // body bytes of the current request still to skip
  let head = null;
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (head === null) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = buf.subarray(0, end + 4).toString("latin1");
        buf = buf.subarray(end + 4);
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        need = m ? Number(m[1]) : 0;
      }
      if (buf.length < need) return;
      buf = buf.subarray(need);
      const h = head;
      head = null;
      respond(sock, h);
    }
  });
  sock.on("error", () => {});
}).listen(port, "127.0.0.1");
