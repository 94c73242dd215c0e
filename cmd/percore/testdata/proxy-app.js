// Test app for percore's proxy tests; no dependencies. Routes:
//   /                       {pid, worker}
//   /count                  {requests, clientErrors, open, aborted, sockets}: what this worker saw
//                           (requests leave out /count itself and percore's health checks)
//   /headers                the request headers as JSON
//   /slow?ms=N              answers after N ms
//   /sse?n=N&ms=M           N server-sent events, M ms apart
//   /dribble?size=S&n=N&ms=M&first=F  S bytes with Content-Length: F bytes at once,
//                           then the rest in N pieces M ms apart
//   /download?bytes=N       N bytes, byte i = i % 251, with Content-Length
//   POST /upload            {bytes, sha256} of the request body
// WebSocket (RFC 6455, server side written out here) on any upgrade:
//   /ws                     echoes text and binary messages; on SIGTERM it
//                           sends close 1001 and ends
//   /ws?linger=1            the same, but SIGTERM leaves it open
//   /ws-refuse              answers 403 and closes
//   /ws-wrong               answers 101 with another protocol
const http = require("node:http");
const crypto = require("node:crypto");

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;
const stats = { requests: 0, clientErrors: 0, open: 0, aborted: 0 };
const sockets = new Set();

const pattern = Buffer.alloc(251 * 256);
for (let i = 0; i < pattern.length; i++) pattern[i] = i % 251;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const q = (k, d) => Number(url.searchParams.get(k) || d);
  const json = (v) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(v));
  };
  const healthCheck = req.method === "OPTIONS" && req.url === "*";
  if (url.pathname !== "/count" && !healthCheck) stats.requests++;
  req.on("aborted", () => stats.aborted++);
  switch (url.pathname) {
    case "/count":
      return json({ ...stats, sockets: sockets.size });
    case "/headers":
      return json({ headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, url: req.url });
    case "/slow":
      return setTimeout(() => json({ pid: process.pid, worker }), q("ms", 1000));
    case "/sse": {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      let i = 0;
      const n = q("n", 5);
      const t = setInterval(() => {
        res.write(`id: ${i}\ndata: event ${i}\n\n`);
        if (++i === n) {
          clearInterval(t);
          res.end();
        }
      }, q("ms", 200));
      res.on("close", () => clearInterval(t));
      return;
    }
    case "/dribble": {
      const size = q("size", 65536), n = q("n", 4), first = Math.min(q("first", 100), size);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
      res.write(Buffer.alloc(first, 120));
      let sent = first, i = 0;
      const piece = Math.ceil((size - first) / n);
      const t = setInterval(() => {
        const k = Math.min(piece, size - sent);
        res.write(Buffer.alloc(k, 120));
        sent += k;
        if (++i === n || sent >= size) {
          clearInterval(t);
          res.end();
        }
      }, q("ms", 300));
      res.on("close", () => clearInterval(t));
      return;
    }
    case "/download": {
      const total = q("bytes", 1 << 20);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const k = Math.min(pattern.length, total - sent);
          sent += k;
          if (!res.write(k === pattern.length ? pattern : pattern.subarray(0, k))) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      return pump();
    }
    case "/upload": {
      const h = crypto.createHash("sha256");
      let n = 0;
      req.on("data", (c) => {
        n += c.length;
        h.update(c);
      });
      req.on("end", () => json({ bytes: n, sha256: h.digest("hex") }));
      return;
    }
    default:
      return json({ pid: process.pid, worker });
  }
});

server.on("connection", (s) => {
  stats.open++;
  s.on("close", () => stats.open--);
});
server.on("clientError", (err, socket) => {
  stats.clientErrors++;
  socket.destroy();
});

// frame encodes one unmasked server frame.
function frame(opcode, payload) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0x80 | opcode, n]);
  } else if (n < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

function closeFrame(code, reason) {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return frame(8, p);
}

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/ws-refuse") {
    socket.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n");
    return;
  }
  const key = req.headers["sec-websocket-key"];
  if (!key || (req.headers.upgrade || "").toLowerCase() !== "websocket") {
    socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  const accept = crypto.createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  const proto = url.pathname === "/ws-wrong" ? "h2c" : "websocket";
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${proto}\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Accept: ${accept}\r\nX-Worker: ${worker}\r\n\r\n`);
  socket.linger = url.searchParams.get("linger") === "1";
  sockets.add(socket);
  socket.on("close", () => sockets.delete(socket));
  socket.on("error", () => {});
  let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
  const parse = () => {
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i & 3)];
      buf = buf.subarray(off + len);
      if (!masked) {
        socket.end(closeFrame(1002, "client frames must be masked"));
        return;
      }
      if (opcode === 8) {
        socket.end(frame(8, payload.subarray(0, 2)));
        return;
      } else if (opcode === 9) {
        socket.write(frame(10, payload));
      } else if (opcode === 1 || opcode === 2) {
        socket.write(frame(opcode, payload));
      }
    }
  };
  parse();
  socket.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    parse();
  });
});

server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  for (const s of sockets) {
    if (!s.linger) s.end(closeFrame(1001, "going away"));
  }
  server.close(() => process.exit(0));
});
