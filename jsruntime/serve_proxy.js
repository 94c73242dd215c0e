// percore (proxy mode), loaded before the app with --preload by Deno and
// Bun. As node's preload does, it keeps the promises percore's proxy makes
// about a worker's connections, where the runtime lets it:
//
// - The server the app starts on PORT (Deno.serve, Bun.serve, node:http)
//   listens on 127.0.0.1 only, whatever host the app names.
// - Each answer carries its request's token. percore sends a fresh one with
//   every request in X-Percore-Token, and reuses a connection to a worker
//   only after an answer that carried it: without the token every request
//   gets a connection of its own. Deno's request headers cannot be changed,
//   so a Deno app sees the field; nothing else does.
// - The process whose server listens on PORT answers percore's health
//   checks on a private ping listener of its own, out of the app's sight.
//   A Deno app without the permissions for it (env for PERCORE_PING, net
//   for its loopback port) goes without, and percore checks it with
//   OPTIONS * instead.
//
// A worker started through a wrapper (deno task, bun run of a package.json
// script) does not load it: percore then gives each request a connection of
// its own, which is slower and as safe.
import http from "node:http";
import net from "node:net";

const tokenField = "x-percore-token";
const kToken = Symbol("percore.token");
const port = readPort();

// readPort returns PORT where the worker may read it: a Deno app without
// --allow-env for PORT cannot, and neither can its preload (asking would
// prompt).
function readPort() {
  try {
    if (typeof Deno !== "undefined") {
      const st = Deno.permissions.querySync({ name: "env", variable: "PORT" });
      return st.state === "granted" ? Deno.env.get("PORT") : undefined;
    }
    return process.env.PORT;
  } catch {
    return undefined;
  }
}

const tcp = port !== undefined && /^[0-9]+$/.test(port); // else the path of a Unix socket

// The ping listener of percore's health checks, at PERCORE_PING (a loopback
// port, or a Unix socket's path). percore sends "ping\n" and this process
// answers "pong\n" from its event loop: that proves the loop runs (a TCP
// connect alone would not: the kernel completes handshakes while the loop is
// blocked), and the app's handlers and logs never see it. Only the process
// that listens on PORT takes the address, and takes it out of the
// environment, so that its children do not inherit it.
const pingVar = "PERCORE_PING";
let pingTaken = false;

// denoMay reports whether Deno grants a permission without asking.
function denoMay(desc) {
  return Deno.permissions.querySync(desc).state === "granted";
}

// takePing returns the ping address and takes it out of the environment,
// the first time only; undefined when there is none, or when Deno may not
// read it or listen there.
function takePing() {
  if (pingTaken) return undefined;
  pingTaken = true;
  try {
    if (typeof Deno === "undefined") {
      const addr = process.env[pingVar];
      delete process.env[pingVar];
      return addr || undefined;
    }
    if (!denoMay({ name: "env", variable: pingVar })) return undefined;
    const addr = Deno.env.get(pingVar);
    Deno.env.delete(pingVar);
    if (!addr) return undefined;
    const allowed = /^[0-9]+$/.test(addr)
      ? denoMay({ name: "net", host: "127.0.0.1:" + addr })
      : denoMay({ name: "read", path: addr }) && denoMay({ name: "write", path: addr });
    return allowed ? addr : undefined;
  } catch {
    return undefined;
  }
}

// openPing opens the ping listener at addr, from takePing; it never keeps
// the process alive. It returns the function that closes it.
function openPing(addr) {
  if (addr === undefined) return () => {};
  try {
    // ping.js; on an error percore falls back to OPTIONS *.
    const p = openPingListener(addr, function listen(opts) { return this.listen(opts); }, () => {});
    return () => p.close();
  } catch {
    return () => {};
  }
}

// stamp puts tok into a Response's head. A Response whose headers cannot be
// changed (Response.redirect, a fetch's answer) is copied first.
function stamp(res, tok) {
  if (!(res instanceof Response)) return res;
  try {
    res.headers.set(tokenField, tok);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    copy.headers.set(tokenField, tok);
    return copy;
  }
}

// withToken wraps a fetch-style handler so that its answers carry the
// request's token. Upgrades are left alone: percore sends them on a
// connection of their own, and their answers must not be copied.
function withToken(handler) {
  return function percoreHandler(req, ...rest) {
    const tok = req.headers.get(tokenField);
    if (tok === null || req.headers.has("upgrade")) return handler.call(this, req, ...rest);
    const res = handler.call(this, req, ...rest);
    if (res && typeof res.then === "function") return res.then((r) => stamp(r, tok));
    return stamp(res, tok);
  };
}

// ours reports whether a server's options name PORT: its port, or its
// Unix socket's path.
function ours(port_, path) {
  if (port === undefined) return false;
  return tcp ? port_ !== undefined && String(port_) === port : path === port;
}

function wrapDenoServe() {
  const serve = Deno.serve;
  Deno.serve = function percoreServe(a, b) {
    let opts, handler;
    if (typeof a === "function") [opts, handler] = [{}, a];
    else if (typeof b === "function") [opts, handler] = [a ?? {}, b];
    else [opts, handler] = [a ?? {}, a?.handler];
    if (typeof handler !== "function" || !ours(opts.port, opts.path)) return serve.apply(this, arguments);
    const o = { ...opts };
    delete o.handler;
    if (tcp) o.hostname = "127.0.0.1";
    const ping = takePing();
    const server = serve.call(this, o, withToken(handler));
    const closePing = openPing(ping);
    server.finished.then(closePing, closePing);
    return server;
  };
}

// bunRoute wraps one value of Bun.serve's routes: a handler, a handler per
// method, or a static Response (then answered by a copy per request).
function bunRoute(v) {
  if (typeof v === "function") return withToken(v);
  if (v instanceof Response) return withToken(() => v.clone());
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, h] of Object.entries(v)) out[k] = bunRoute(h);
    return out;
  }
  return v;
}

function wrapBunServe() {
  const serve = Bun.serve;
  Bun.serve = function percoreServe(opts, ...rest) {
    if (!opts || !ours(opts.port ?? process.env.BUN_PORT, opts.unix)) return serve.call(this, opts, ...rest);
    const o = { ...opts };
    if (tcp) o.hostname = "127.0.0.1";
    if (typeof o.fetch === "function") o.fetch = withToken(o.fetch);
    if (o.routes && typeof o.routes === "object") {
      o.routes = Object.fromEntries(Object.entries(o.routes).map(([k, v]) => [k, bunRoute(v)]));
    }
    const ping = takePing();
    const server = serve.call(this, o, ...rest);
    const closePing = openPing(ping);
    const stop = server.stop;
    server.stop = function percoreStop(...args) {
      closePing();
      return stop.apply(this, args);
    };
    return server;
  };
}

// node:http, as Deno and Bun provide it.
function wrapNodeHTTP() {
  const response = http.ServerResponse.prototype;
  if (typeof Deno !== "undefined" && typeof response._storeHeader === "function") {
    // Deno's writeHead, as node's, builds the head in _storeHeader: the
    // token goes there as the head's first field, so that a head given
    // whole to writeHead stays on the fast path (a setHeader before
    // writeHead sends every field of it through setHeader).
    const storeHeader = response._storeHeader;
    response._storeHeader = function percoreStoreHeader(firstLine, headers) {
      const tok = this[kToken];
      if (tok !== undefined) {
        this[kToken] = undefined;
        firstLine += tokenField + ": " + tok + "\r\n";
      }
      return storeHeader.call(this, firstLine, headers);
    };
  } else {
    // Bun writes the head of its own server natively, past _storeHeader.
    const writeHead = response.writeHead;
    response.writeHead = function percoreWriteHead(...args) {
      const tok = this[kToken];
      if (tok !== undefined && !this.headersSent) {
        this[kToken] = undefined;
        this.setHeader(tokenField, tok);
      }
      return writeHead.apply(this, args);
    };
  }
  const onRequest = (req, res) => {
    const tok = req.headers[tokenField];
    if (typeof tok !== "string") return;
    res[kToken] = tok;
    delete req.headers[tokenField];
  };
  const listen = http.Server.prototype.listen;
  http.Server.prototype.listen = function percoreListen(...args) {
    let a = args[0];
    const target = a && typeof a === "object" ? (a.path ?? a.port) : a;
    if (target === undefined || String(target) !== port) return listen.apply(this, args);
    this.prependListener("request", onRequest);
    const ping = takePing();
    if (ping !== undefined) this.once("listening", () => this.once("close", openPing(ping)));
    if (!tcp) return listen.apply(this, args);
    if (a && typeof a === "object") {
      args[0] = { ...a, host: "127.0.0.1" };
    } else if (typeof args[1] === "string" || args[1] == null) {
      args[1] = "127.0.0.1";
    } else {
      args.splice(1, 0, "127.0.0.1");
    }
    return listen.apply(this, args);
  };
}

if (port !== undefined) {
  if (typeof Deno !== "undefined" && typeof Deno.serve === "function") wrapDenoServe();
  if (typeof Bun !== "undefined" && typeof Bun.serve === "function") wrapBunServe();
  wrapNodeHTTP();
}
