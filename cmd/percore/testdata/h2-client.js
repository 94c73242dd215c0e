// Prints the answer to one HTTP/2 prior-knowledge GET of process.argv[2].
const client = require("node:http2").connect(process.argv[2]);
client.on("error", (e) => { console.error(e.message); process.exit(1); });
const req = client.request({ ":path": "/hello" });
let body = "";
req.setEncoding("utf8");
req.on("data", (d) => { body += d; });
req.on("end", () => { console.log(body); client.close(); });
req.end();
