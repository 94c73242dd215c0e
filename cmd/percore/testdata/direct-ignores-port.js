// An app that ignores PORT: in --mode direct it never takes its socket.
require("node:http").createServer((req, res) => res.end("ok")).listen(0, "127.0.0.1");
