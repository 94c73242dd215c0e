// Misbehaving worker for the differential tests, written on node:net. It
// reads the answer shapes from the JSON file named by $DIFF_SHAPES:
// {name: {writes: [[delayMs, "latin1 bytes"], ...], end: "keep"|"close"|"reset"}}.
// A request for /a/NAME gets shape NAME: its writes, each delayMs after the
// one before; then "close" ends the connection, "reset" destroys it and
// "keep" goes on reading requests on it. Any other request gets a correct
// keep-alive answer whose body is "for PATH\n". Request bodies are not
// expected. It listens on $PORT (0: any free port) and prints
// "listening PORT" once it does.
const net = require("node:net");
const fs = require("node:fs");

const shapes = JSON.parse(fs.readFileSync(process.env.DIFF_SHAPES, "utf8"));

function normal(path) {
  const body = "for " + path + "\n";
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + Buffer.byteLength(body) + "\r\n\r\n" + body;
}

const server = net.createServer((socket) => {
  socket.on("error", () => {});
  let buf = "";
  let busy = false; // a shape's writes are under way
  const next = () => {
    if (busy || socket.destroyed) return;
    const i = buf.indexOf("\r\n\r\n");
    if (i < 0) return;
    const head = buf.slice(0, i);
    buf = buf.slice(i + 4);
    const path = (head.split("\r\n")[0].split(" ")[1]) || "/";
    const m = /^\/a\/([^/?]+)/.exec(path);
    const shape = m && shapes[m[1]];
    if (!shape) {
      socket.write(normal(path), "latin1");
      return next();
    }
    busy = true;
    let k = 0;
    const step = () => {
      if (socket.destroyed) return;
      if (k < shape.writes.length) {
        const [delay, data] = shape.writes[k++];
        setTimeout(() => {
          if (!socket.destroyed) socket.write(data, "latin1");
          step();
        }, delay);
        return;
      }
      if (shape.end === "close") return socket.end();
      if (shape.end === "reset") return socket.resetAndDestroy();
      busy = false;
      next();
    };
    step();
  };
  socket.on("data", (d) => {
    buf += d.toString("latin1");
    next();
  });
});
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log("listening " + server.address().port);
});
process.on("SIGTERM", () => process.exit(0));
