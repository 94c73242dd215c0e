// Test app whose processes leave its process group. Routes:
//   /detached?mb=N  starts a detached child (a session of its own) that holds
//                   N MiB; answers {pid, child}; &ignore=1: the child
//                   ignores SIGTERM
//   /doublefork     starts a detached child that starts a grandchild and
//                   exits, so that the grandchild is reparented to percore;
//                   answers {pid, child} with the grandchild's pid; &hide=1:
//                   without PERCORE_WORKER_KEY in their environment
//   /exit           starts a detached child, answers {pid, child}, exits 1
//   /               {pid, worker}
const http = require("node:http");
const { spawn } = require("node:child_process");

const port = Number(process.env.PORT);
const worker = process.env.PERCORE_WORKER_ID;

// holder is the script of a child that keeps mb MiB of touched memory.
const holder = (mb, ignore) =>
  `const b = Buffer.alloc(${mb} << 20, 1); setInterval(() => { b[0]++; }, 1000);` +
  (ignore ? `process.on("SIGTERM", () => {});` : "");

// detached starts a child in a session of its own, out of the worker's group.
function detached(mb, ignore) {
  const c = spawn(process.execPath, ["-e", holder(mb, ignore)], { detached: true, stdio: "ignore" });
  c.unref();
  return c.pid;
}

// doubleFork starts a detached child that starts a grandchild, prints its
// pid and exits; it calls back with the grandchild's pid once the child exited.
function doubleFork(hide, done) {
  const script = `
    const { spawn } = require("node:child_process");
    const g = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    g.unref();
    process.stdout.write(String(g.pid));
  `;
  const env = { ...process.env };
  if (hide) delete env.PERCORE_WORKER_KEY;
  const c = spawn(process.execPath, ["-e", script], { detached: true, env, stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  c.stdout.on("data", (d) => (out += d));
  c.on("exit", () => done(Number(out.trim())));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const json = (v) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(v));
  };
  switch (url.pathname) {
    case "/detached":
      return json({ pid: process.pid, child: detached(Number(url.searchParams.get("mb") || 0), url.searchParams.has("ignore")) });
    case "/doublefork":
      return doubleFork(url.searchParams.has("hide"), (child) => json({ pid: process.pid, child }));
    case "/exit":
      json({ pid: process.pid, child: detached(0, false) });
      return setTimeout(() => process.exit(1), 50);
    default:
      return json({ pid: process.pid, worker });
  }
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
