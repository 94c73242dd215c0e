// A Deno worker that reads PORT and answers with its V8 heap limit.
import v8 from "node:v8";
Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: "127.0.0.1" }, () =>
  Response.json({
    heap_size_limit: v8.getHeapStatistics().heap_size_limit,
    worker: Deno.env.get("PERCORE_WORKER_ID"),
    runtime: "deno",
  }));
