// An app with two servers that both listen on PORT.
const http = require("node:http");
const port = Number(process.env.PORT);
http.createServer((req, res) => res.end("one\n")).listen(port);
http.createServer((req, res) => res.end("two\n")).listen(port);
