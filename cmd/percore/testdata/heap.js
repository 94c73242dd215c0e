// Answers with the V8 heap limit this worker runs with (node and bun).
const http = require("node:http");
const v8 = require("node:v8");
http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({
    heap_size_limit: v8.getHeapStatistics().heap_size_limit,
    worker: process.env.PERCORE_WORKER_ID,
    node_options: process.env.NODE_OPTIONS || "",
    force_ram: process.env.BUN_JSC_forceRAMSize || "",
    runtime: typeof Bun !== "undefined" ? "bun" : "node",
  }));
}).listen(Number(process.env.PORT), "127.0.0.1");
