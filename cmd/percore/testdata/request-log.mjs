// Logs every request it receives, as morgan, Fastify's logger and Astro's
// warnings do, and answers it: an app whose log would show percore's
// health checks if they reached it. Runs on node, deno run and bun.
import http from "node:http";

const env = (name) => (globalThis.Deno ? Deno.env.get(name) : process.env[name]);
http.createServer((req, res) => {
  console.log("request " + req.method + " " + req.url);
  res.end("ok\n");
}).listen(Number(env("PORT")));
