// Starts slowly, then dies soon after it listens: an app that takes 1.5 s
// to connect to its database and exits 0.5 s after it is ready.
const http = require("http");
setTimeout(() => {
  const server = http.createServer((req, res) => res.end("ok\n"));
  server.listen(process.env.PORT, process.env.HOST, () => {
    console.log("listening");
    setTimeout(() => {
      console.error("lost the database connection (crash for test)");
      process.exit(1);
    }, 500);
  });
}, 1500);
