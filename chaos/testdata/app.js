// Worker app for percore's chaos suite; no dependencies. Every route reads
// the request body to its end before it answers. Routes, for any method:
//   /                         {pid, worker}
//   /slow?ms=N                answers after N ms
//   /leak?mb=M&every=T&max=X  answers, then keeps M MiB more alive every T ms,
//                             up to X MiB in all: the resident size grows
//   /block                    answers, then blocks the event loop for good
//   /busy?ms=N                answers, then busy-loops the event loop for N ms
//   /smuggled...              answers like /; prints "chaos-saw METHOD URL"
//                             when the request arrives and "chaos-saw-end
//                             METHOD URL" when its body is complete
// SIGTERM closes the server and exits once its connections are gone.
// A request node itself cannot parse prints "chaos-client-error CODE".
// SIGUSR2 starts a flood of stdout: lines of CHAOS_FLOOD_LINE bytes (default
// 1000, newline included) at up to CHAOS_FLOOD_MBPS MB/s (default 100).
// The worker whose PERCORE_WORKER_ID is CHAOS_TICK_WORKER prints
// "chaos-tick <microseconds since the epoch>" every 100 ms.
// CHAOS_GROW="M,T" keeps M MiB more alive every T ms from the start, for good.
// CHAOS_HOLD="DIR,M" fills the memory cgroup DIR with Buffers until its
// anonymous and locked memory is M MiB below its limit, then holds it there: the page
// cache, code included, has M MiB left and the kernel reclaims it constantly.
// Both grow memory outside the V8 heap, which no heap limit stops.
const http = require("node:http");

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;
const kept = [];

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const q = (k, d) => Number(url.searchParams.get(k) || d);
  const json = (v) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(v));
  };
  const smuggled = url.pathname.startsWith("/smuggled");
  if (smuggled) process.stdout.write(`chaos-saw ${req.method} ${req.url}\n`);
  req.on("data", () => {});
  req.on("end", () => {
    if (smuggled) process.stdout.write(`chaos-saw-end ${req.method} ${req.url}\n`);
    switch (url.pathname) {
      case "/slow":
        return setTimeout(() => json({ pid: process.pid, worker }), q("ms", 1000));
      case "/leak": {
        const mb = q("mb", 10), max = q("max", 400);
        let total = 0;
        const t = setInterval(() => {
          kept.push(Buffer.alloc(mb << 20, 1));
          total += mb;
          if (total >= max) clearInterval(t);
        }, q("every", 100));
        return json({ pid: process.pid, worker });
      }
      case "/block":
        json({ pid: process.pid, worker, blocking: true });
        return setTimeout(() => { for (;;) {} }, 20);
      case "/busy": {
        json({ pid: process.pid, worker, busy: true });
        const ms = q("ms", 5000);
        return setImmediate(() => {
          const end = Date.now() + ms;
          while (Date.now() < end) {}
        });
      }
      default:
        return json({ pid: process.pid, worker });
    }
  });
});

server.on("clientError", (err, socket) => {
  process.stdout.write(`chaos-client-error ${err.code}\n`);
  socket.destroy();
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));

if (process.env.CHAOS_TICK_WORKER === worker) {
  setInterval(() => {
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    process.stdout.write(`chaos-tick ${us}\n`);
  }, 100);
}

if (process.env.CHAOS_GROW) {
  const [mb, every] = process.env.CHAOS_GROW.split(",").map(Number);
  setInterval(() => kept.push(Buffer.alloc(mb << 20, 1)), every);
}

if (process.env.CHAOS_HOLD) {
  const fs = require("node:fs");
  const [dir, margin] = process.env.CHAOS_HOLD.split(",");
  const v1 = fs.existsSync(dir + "/memory.limit_in_bytes");
  const limit = Number(fs.readFileSync(dir + (v1 ? "/memory.limit_in_bytes" : "/memory.max"), "utf8"));
  // Anonymous and locked memory: what the kernel cannot reclaim.
  const anon = () => {
    const stat = fs.readFileSync(dir + "/memory.stat", "utf8");
    const field = (name) => Number((stat.match(new RegExp("^" + name + " (\\d+)$", "m")) || [0, 0])[1]);
    return v1 ? field("total_rss") + field("total_unevictable") : field("anon") + field("unevictable");
  };
  const room = () => limit - Number(margin) * (1 << 20) - anon();
  let held = false;
  const hold = () => {
    for (let r = room(); r > 0; r = room()) kept.push(Buffer.alloc(Math.min(r, 4 << 20), 1));
    if (!held) process.stdout.write(`chaos-holding ${anon()} of ${limit}\n`);
    held = true;
  };
  setTimeout(function fill() {
    hold();
    setTimeout(fill, 20);
  }, 200);
}

// The flood writes one block per 10 ms tick, sized for the target rate.
// Writes to a pipe are synchronous on Linux, so a reader slower than the
// target lowers the rate instead of queueing memory here.
let flooding = false;
process.on("SIGUSR2", () => {
  if (flooding) return;
  flooding = true;
  const lineLen = Number(process.env.CHAOS_FLOOD_LINE || 1000);
  const mbps = Number(process.env.CHAOS_FLOOD_MBPS || 100);
  const line = "flood " + "x".repeat(Math.max(0, lineLen - 7)) + "\n";
  const perTick = Math.max(1, Math.round((mbps * 1e6) / 100 / line.length));
  const block = line.repeat(perTick);
  setInterval(() => process.stdout.write(block), 10);
});
