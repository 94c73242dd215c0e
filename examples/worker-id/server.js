// Every worker serves HTTP; only worker 0 runs the periodic job, so the job
// runs once per machine however many workers percore starts. percore sets
// PERCORE_WORKER_ID and, under PM2's name, NODE_APP_INSTANCE (0..N-1), and
// PERCORE_WORKER_COUNT. A worker that is restarted or replaced keeps its id.
const http = require("node:http");

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const worker = Number(process.env.NODE_APP_INSTANCE ?? process.env.PERCORE_WORKER_ID ?? 0);
const workers = Number(process.env.PERCORE_WORKER_COUNT || 1);
const everyMs = Number(process.env.JOB_INTERVAL_MS || 60_000);

const job = { runs: 0, lastRun: null };

function runJob() {
  job.runs++;
  job.lastRun = new Date().toISOString();
  console.log(`worker ${worker}: job run ${job.runs}`);
}

const timer = worker === 0 ? setInterval(runJob, everyMs) : null;
if (timer) runJob();

const server = http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ worker, workers, runsJob: timer !== null, job }) + "\n");
});

server.listen(port, host, () => {
  console.log(`worker ${worker} of ${workers} (pid ${process.pid}) listening on ${host}:${port}`);
});

// On SIGTERM: stop the job, stop listening, exit once idle sockets are closed.
process.on("SIGTERM", () => {
  clearInterval(timer);
  server.close(() => process.exit(0));
});
