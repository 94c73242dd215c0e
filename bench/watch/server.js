// The app that bench/watch/run saves under load: it answers every request
// with the version that version.js, next to it, exports.
"use strict";
const http = require("node:http");
const version = require("./version.js");
http
  .createServer((req, res) => {
    res.setHeader("x-app-version", version);
    res.end(`${version}\n`);
  })
  .listen(Number(process.env.PORT), process.env.HOST || "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
