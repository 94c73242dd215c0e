// A WebSocket echo server with no dependencies: the server side of RFC 6455
// written out on Node's 'upgrade' event. It echoes every text or binary
// message, answers pings, and closes with 1001 (going away) on SIGTERM.
// GET / serves a small page that talks to it.
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const worker = process.env.PERCORE_WORKER_ID || "0";

// RFC 6455 §1.3: the server proves it read the handshake by hashing the
// client's Sec-WebSocket-Key with this GUID.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_MESSAGE = 1 << 20; // larger messages are closed with 1009
const CLOSE_WAIT_MS = 2000; // how long to wait for the client's close frame

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

const page = fs.readFileSync(path.join(__dirname, "index.html"));
const utf8 = new TextDecoder("utf-8", { fatal: true });
const connections = new Set();

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/") {
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(page);
    return;
  }
  res.statusCode = 404;
  res.end("not found\n");
});

server.on("upgrade", (req, socket, head) => {
  socket.on("error", () => socket.destroy());
  const key = req.headers["sec-websocket-key"] || "";
  // §4.2.1: a GET with Upgrade: websocket and a 16-byte base64 key.
  if (req.method !== "GET" || String(req.headers.upgrade).toLowerCase() !== "websocket" ||
      Buffer.from(key, "base64").length !== 16) {
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    return;
  }
  // §4.4: name the version we speak when the client asks for another.
  if (req.headers["sec-websocket-version"] !== "13") {
    socket.end("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n");
    return;
  }
  const accept = crypto.createHash("sha1").update(key + GUID).digest("base64");
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\n" +
    "Upgrade: websocket\r\n" +
    "Connection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  connections.add(new Connection(socket, head));
});

// Connection is one WebSocket: it reads frames, reassembles fragmented
// messages and echoes them.
class Connection {
  constructor(socket, head) {
    this.socket = socket;
    this.buf = Buffer.from(head);
    this.parts = []; // fragments of the message being received
    this.partsOpcode = 0;
    this.partsSize = 0;
    this.closeSent = false;
    this.timer = null;
    socket.setNoDelay(true);
    socket.on("data", (chunk) => this.read(chunk));
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      clearTimeout(this.timer);
      connections.delete(this);
    });
    if (this.buf.length > 0) this.read(Buffer.alloc(0));
  }

  read(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 2 && !this.socket.writableEnded) {
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE)) return this.fail(1009, "message too big");
        len = Number(big);
        off = 10;
      }
      // §5.2: no extension was negotiated, so the reserved bits must be 0.
      if (b0 & 0x70) return this.fail(1002, "reserved bits set");
      // §5.1: every frame from a client is masked.
      if ((b1 & 0x80) === 0) return this.fail(1002, "unmasked frame");
      // §5.5: control frames are not fragmented and carry at most 125 bytes.
      if (opcode >= 0x8 && (!fin || len > 125)) return this.fail(1002, "bad control frame");
      if (len > MAX_MESSAGE) return this.fail(1009, "message too big");
      if (this.buf.length < off + 4 + len) return;
      const mask = this.buf.subarray(off, off + 4);
      const payload = Buffer.from(this.buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      this.buf = this.buf.subarray(off + 4 + len);
      this.frame(fin, opcode, payload);
    }
  }

  frame(fin, opcode, payload) {
    switch (opcode) {
      case OP_TEXT:
      case OP_BINARY:
        if (this.parts.length > 0) return this.fail(1002, "expected a continuation frame");
        if (fin) return this.message(opcode, payload);
        this.partsOpcode = opcode;
        return this.fragment(payload);
      case OP_CONT:
        if (this.parts.length === 0) return this.fail(1002, "unexpected continuation frame");
        this.fragment(payload);
        if (fin) {
          const data = Buffer.concat(this.parts);
          this.parts = [];
          this.partsSize = 0;
          this.message(this.partsOpcode, data);
        }
        return;
      case OP_PING:
        return this.send(OP_PONG, payload);
      case OP_PONG:
        return;
      case OP_CLOSE:
        return this.closed(payload);
      default:
        return this.fail(1002, "unknown opcode");
    }
  }

  fragment(payload) {
    this.partsSize += payload.length;
    if (this.partsSize > MAX_MESSAGE) return this.fail(1009, "message too big");
    this.parts.push(payload);
  }

  message(opcode, data) {
    if (opcode === OP_TEXT) {
      // §8.1: text must be valid UTF-8, else close with 1007.
      try {
        utf8.decode(data);
      } catch {
        return this.fail(1007, "invalid UTF-8");
      }
    }
    this.send(opcode, data);
  }

  // closed handles the client's close frame: §5.5.1 answers it with the
  // same status code, and §7.1.1 has the server close the TCP connection.
  closed(payload) {
    if (payload.length === 1) return this.fail(1002, "bad close frame");
    if (!this.closeSent) {
      this.closeSent = true;
      this.send(OP_CLOSE, payload.subarray(0, 2), true);
    }
    this.socket.end();
  }

  // close starts the closing handshake; the client has CLOSE_WAIT_MS to answer.
  close(code, reason) {
    if (this.closeSent) return;
    this.send(OP_CLOSE, closePayload(code, reason), true);
    this.closeSent = true;
    this.timer = setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
  }

  // fail closes the connection at once after a protocol error (§7.1.7).
  fail(code, reason) {
    this.close(code, reason);
    this.socket.end();
  }

  send(opcode, payload, control = false) {
    if (this.closeSent && !control) return;
    if (this.socket.writable) this.socket.write(encodeFrame(opcode, payload));
  }
}

// encodeFrame builds one unfragmented, unmasked server frame (§5.2).
function encodeFrame(opcode, payload) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  header[0] = 0x80 | opcode;
  return Buffer.concat([header, payload]);
}

function closePayload(code, reason) {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

server.listen(port, host, () => {
  console.log(`websocket worker ${worker} (pid ${process.pid}) listening on ${host}:${port}`);
});

// On SIGTERM: stop listening and close every WebSocket with 1001 (going
// away). server.close's callback runs once the last socket is gone.
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  for (const c of connections) c.close(1001, "server shutting down");
});
