// Serves on PORT; once the file OOM_PAIR_FILE names this process's pid,
// keeps allocating Buffers (outside the V8 heap, which no heap limit
// stops) as fast as it can, until the kernel's OOM killer ends it. Two
// workers named together fill their memory cgroup together.
const http = require("node:http");
const fs = require("node:fs");

const kept = [];
http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid }))).listen(Number(process.env.PORT), "127.0.0.1");

const poll = setInterval(() => {
  let names = "";
  try {
    names = fs.readFileSync(process.env.OOM_PAIR_FILE, "utf8");
  } catch {
    return;
  }
  if (!names.split(/\s+/).includes(String(process.pid))) return;
  clearInterval(poll);
  for (;;) kept.push(Buffer.alloc(4 << 20, 1));
}, 5);
process.on("SIGTERM", () => process.exit(0));
