// Drives socket.io clients against URL and prints one JSON report.
//   node socketio-clients.js URL N ROUNDS [SECONDS]
// opens N clients with socket.io-client's default options, N polling-only
// and N WebSocket-only. Each does ROUNDS acknowledged round trips, or, with
// SECONDS, keeps doing them for that long, reconnecting by itself when its
// session breaks. A round trip fails when its ack does not come in 5s.
const { io } = require("socket.io-client");

const [url, n, rounds, seconds] = [process.argv[2], +process.argv[3], +process.argv[4], +(process.argv[5] || 0)];
const modes = { default: {}, polling: { transports: ["polling"] }, websocket: { transports: ["websocket"] } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function client(mode) {
  const r = { mode, ok: 0, failures: 0, workers: {}, disconnects: 0, connectErrors: 0, lastOk: 0 };
  const socket = io(url, { ...modes[mode], forceNew: true, reconnectionDelay: 200, reconnectionDelayMax: 1000 });
  socket.on("disconnect", (reason) => reason !== "io client disconnect" && r.disconnects++);
  socket.on("connect_error", () => r.connectErrors++);
  const until = Date.now() + seconds * 1000;
  for (let i = 0; seconds ? Date.now() < until : i < rounds; i++) {
    try {
      const a = await socket.timeout(5000).emitWithAck("echo", i);
      if (a.n !== i) throw new Error("wrong ack");
      r.ok++;
      r.workers[a.worker] = (r.workers[a.worker] || 0) + 1;
      r.lastOk = Date.now();
    } catch {
      r.failures++;
    }
    if (seconds) await sleep(100);
  }
  r.upgraded = socket.io.engine ? socket.io.engine.transport.name : "";
  socket.close();
  return r;
}

(async () => {
  const all = [];
  for (const mode of Object.keys(modes)) for (let i = 0; i < n; i++) all.push(client(mode));
  const clients = await Promise.all(all);
  const end = Date.now();
  for (const c of clients) c.sinceOk = c.lastOk ? end - c.lastOk : -1;
  process.stdout.write(JSON.stringify(clients) + "\n");
  process.exit(0);
})();
