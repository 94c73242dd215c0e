// An app that runs Node's cluster module itself: the primary forks two
// workers, forks again when one exits, and each worker listens on PORT.
const cluster = require("node:cluster");
const http = require("node:http");
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on("exit", () => cluster.fork());
} else {
  http.createServer((req, res) => res.end("cluster worker " + process.pid + "\n")).listen(Number(process.env.PORT));
}
