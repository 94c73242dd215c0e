// Usage: node client.js URL APP_DIR
//
// The save-under-load case of bench/watch/run: CONNS keep-alive clients send
// GETs to URL the whole time, while the script saves APP_DIR/version.js
// three times, PHASE seconds apart: a good change (v2), a syntax error, and
// the fix (v3). For each phase it prints the requests that succeeded and
// failed, the longest time one client went without an answer, and how long
// after the save the first answer came from the new code. A request fails on a connection error, a 2 s timeout or a status
// other than 200; a failed request is retried after 10 ms.
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");

const [url, dir] = process.argv.slice(2);
const conns = Number(process.env.CONNS || 4);
const phase = Number(process.env.PHASE || 8) * 1000;
const file = path.join(dir, "version.js");
const phases = [
  { name: "good save", code: 'module.exports = "v2";\n', want: "v2" },
  { name: "broken save", code: 'module.exports = "v3" +;\n', want: null },
  { name: "fixed save", code: 'module.exports = "v3";\n', want: "v3" },
];
const stats = phases.map(() => ({ ok: 0, failed: 0, outage: 0, firstNew: null }));
let current = -1;
let savedAt = 0;
let running = true;

const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
function one() {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200 ? res.headers["x-app-version"] || "?" : null));
      res.on("error", () => resolve(null));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(null));
  });
}

async function loop() {
  let failingSince = 0;
  while (running) {
    const at = current;
    const version = await one();
    if (at < 0) continue;
    const s = stats[at];
    if (version === null) {
      s.failed++;
      if (!failingSince) failingSince = Date.now();
      s.outage = Math.max(s.outage, Date.now() - failingSince);
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    s.ok++;
    failingSince = 0;
    if (s.firstNew === null && phases[at].want && version === phases[at].want) s.firstNew = Date.now() - savedAt;
  }
}

async function main() {
  const loops = Array.from({ length: conns }, loop);
  await new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < phases.length; i++) {
    fs.writeFileSync(file, phases[i].code);
    savedAt = Date.now();
    current = i;
    await new Promise((r) => setTimeout(r, phase));
  }
  running = false;
  await Promise.all(loops);
  agent.destroy();
  for (let i = 0; i < phases.length; i++) {
    const s = stats[i];
    const seen = phases[i].want ? (s.firstNew === null ? "never" : `${s.firstNew}ms`) : "-";
    console.log(`${phases[i].name}\t${s.ok}\t${s.failed}\t${s.outage}ms\t${seen}`);
  }
}
main();
