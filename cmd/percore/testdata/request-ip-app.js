// Test app for the client-address headers: answers every request with the
// address the request-ip package (NODE_PATH) finds for it, and the headers
// it got.
const http = require("node:http");
const requestIp = require("request-ip");

http
  .createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ ip: requestIp.getClientIp(req), headers: req.headers, rawHeaders: req.rawHeaders }));
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
