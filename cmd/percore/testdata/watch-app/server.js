// Test app for percore --watch: the proxy test app (proxy-app.js, copied
// beside it), with each answer saying the version that version.js exports
// in an x-app-version header.
const http = require("node:http");
const version = require("./version.js");
const createServer = http.createServer;
http.createServer = (handler) =>
  createServer((req, res) => {
    res.setHeader("x-app-version", version);
    handler(req, res);
  });
require("./proxy-app.js");
