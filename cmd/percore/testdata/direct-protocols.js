// Serves HTTP/2 cleartext (prior knowledge) on PORT, or with PROTO=echo a
// raw TCP echo server.
const port = Number(process.env.PORT);
if (process.env.PROTO === "echo") {
  require("node:net").createServer((s) => s.pipe(s)).listen(port);
} else {
  const server = require("node:http2").createServer();
  server.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200, "content-type": "text/plain" });
    stream.end("h2 " + headers[":path"] + " worker " + process.env.PERCORE_WORKER_ID);
  });
  server.listen(port);
}
