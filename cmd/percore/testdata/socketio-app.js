// A socket.io server with its default options, for the sticky-routing
// tests. Each acknowledgement names the worker that holds the session.
// With "session" as argument it is an express app instead, whose logins
// live in express-session's default memory store:
//   POST /login?user=U   logs U in (sets the session cookie)
//   GET  /me             200 {user, worker} when logged in, else 401
const http = require("node:http");

const port = /^\d+$/.test(process.env.PORT) ? Number(process.env.PORT) : process.env.PORT;
const worker = process.env.PERCORE_WORKER_ID;

if (process.argv[2] === "session") {
  const express = require("express");
  const session = require("express-session");
  const app = express();
  app.use(session({ secret: "test only", resave: false, saveUninitialized: false }));
  app.post("/login", (req, res) => {
    req.session.user = req.query.user;
    res.json({ user: req.session.user, worker });
  });
  app.get("/me", (req, res) => {
    if (!req.session.user) return res.status(401).json({ worker });
    res.json({ user: req.session.user, worker });
  });
  http.createServer(app).listen(port, process.env.HOST);
} else {
  const { Server } = require("socket.io");
  const server = http.createServer((req, res) => res.end("worker " + worker));
  const io = new Server(server);
  io.on("connection", (socket) => {
    socket.on("echo", (n, ack) => ack({ n, worker }));
  });
  server.listen(port, process.env.HOST);
}
process.on("SIGTERM", () => process.exit(0));
