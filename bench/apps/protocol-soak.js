// The client bench/protocols runs: light load on a server that does not
// speak HTTP/1.1, for a number of seconds, in two loops at once:
//
//   fresh   a request on a new connection (TCP socket, HTTP/2 session or
//           gRPC client) every EVERY ms, the connection closed after it
//   reused  a request every EVERY ms on one connection kept open; after a
//           failure it is closed and a new one opened for the next request
//
// Each request has 5 s to be answered right. At the end it prints one line:
//   {"seconds":S,"fresh":{"sent":N,"failed":N,"conns":N,"errors":{...}},"reused":{...}}
// where errors counts each distinct error message.
//
//   node protocol-soak.js echo|h2|grpc HOST:PORT SECONDS [EVERY]
//
// echo speaks to cmd/percore/testdata/direct-protocols.js with PROTO=echo,
// h2 to the same app without it, grpc to cmd/percore/testdata/grpc-echo.js
// (GRPC_JS is the path of @grpc/grpc-js).
const net = require("node:net");
const http2 = require("node:http2");

const [proto, addr, secondsArg, everyArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const every = Number(everyArg || 500);
if (!["echo", "h2", "grpc"].includes(proto) || !addr || !(seconds > 0) || !(every > 0)) {
  console.error("usage: node protocol-soak.js echo|h2|grpc HOST:PORT SECONDS [EVERY-MS]");
  process.exit(2);
}
const host = addr.slice(0, addr.lastIndexOf(":"));
const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
const TIMEOUT = 5000;

// once calls cb at most once.
function once(cb) {
  let called = false;
  return (err) => {
    if (!called) {
      called = true;
      cb(err);
    }
  };
}

// Each connection type: open() returns a connection, ask(conn, n, cb)
// sends request n on it and calls cb(err) once, close(conn) ends it.
const kinds = {
  echo: {
    open() {
      const s = net.connect(port, host);
      s.buf = "";
      s.waiting = null;
      s.on("data", (d) => {
        s.buf += d;
        const i = s.buf.indexOf("\n");
        if (i < 0 || !s.waiting) return;
        const line = s.buf.slice(0, i + 1);
        s.buf = s.buf.slice(i + 1);
        const w = s.waiting;
        s.waiting = null;
        w.cb(line === w.want ? null : new Error("echo: got " + JSON.stringify(line)));
      });
      const fail = (err) => { if (s.waiting) { const w = s.waiting; s.waiting = null; w.cb(err); } };
      s.on("error", fail);
      s.on("close", () => {
        s.gone = true;
        fail(new Error("echo: connection closed before the answer"));
      });
      return s;
    },
    ask(s, n, cb) {
      if (s.gone) {
        cb(new Error("echo: the kept connection was closed while idle"));
        return;
      }
      const want = "hello " + n + "\n";
      const t = setTimeout(() => cb(new Error("echo: no answer within 5 s")), TIMEOUT);
      s.waiting = { want, cb: (err) => { clearTimeout(t); cb(err); } };
      s.write(want);
    },
    close(s) { s.end(); },
  },
  h2: {
    open() {
      const session = http2.connect("http://" + addr);
      session.on("error", () => {}); // each stream reports its own failure
      return session;
    },
    ask(session, n, cb) {
      const path = "/hello/" + n;
      let req;
      try {
        req = session.request({ ":path": path });
      } catch (err) {
        cb(err);
        return;
      }
      const t = setTimeout(() => { req.close(http2.constants.NGHTTP2_CANCEL); cb(new Error("h2: no answer within 5 s")); }, TIMEOUT);
      const done = (err) => { clearTimeout(t); cb(err); };
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (d) => { body += d; });
      req.on("error", done);
      req.on("close", () => done(new Error("h2: stream closed before its end, code " + req.rstCode)));
      req.on("end", () => done(body.startsWith("h2 " + path + " worker ") ? null : new Error("h2: got " + JSON.stringify(body))));
      req.end();
    },
    close(session) { session.close(); },
  },
  grpc: {
    open() {
      if (!kinds.grpc.Client) {
        const grpc = require(process.env.GRPC_JS);
        const json = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString()) };
        kinds.grpc.Client = grpc.makeGenericClientConstructor({
          say: {
            path: "/percore.Echo/Say", requestStream: false, responseStream: false,
            requestSerialize: json.serialize, requestDeserialize: json.deserialize,
            responseSerialize: json.serialize, responseDeserialize: json.deserialize,
          },
        }, "Echo");
        kinds.grpc.insecure = () => grpc.credentials.createInsecure();
      }
      return new kinds.grpc.Client(addr, kinds.grpc.insecure());
    },
    ask(client, n, cb) {
      const text = "hello " + n;
      client.say({ text }, { deadline: Date.now() + TIMEOUT }, (err, res) => {
        cb(err || (res && res.text === text ? null : new Error("grpc: got " + JSON.stringify(res))));
      });
    },
    close(client) { client.close(); },
  },
};

const kind = kinds[proto];
const end = Date.now() + seconds * 1000;
const stats = {};
let running = 0;

function newStats(name) {
  stats[name] = { sent: 0, failed: 0, conns: 0, errors: {} };
  return stats[name];
}

function record(st, err) {
  if (!err) return;
  st.failed++;
  const msg = String(err.message || err);
  st.errors[msg] = (st.errors[msg] || 0) + 1;
}

// loop sends requests every `every` ms until the end; reuse keeps one
// connection for all of them (replaced after a failure).
function loop(name, reuse) {
  const st = newStats(name);
  let conn = null;
  running++;
  const step = () => {
    if (Date.now() >= end) {
      if (conn) kind.close(conn);
      if (--running === 0) finish();
      return;
    }
    if (!conn) {
      conn = kind.open();
      st.conns++;
    }
    const c = conn;
    const n = st.sent++;
    kind.ask(c, n, once((err) => {
      record(st, err);
      if (!reuse || err) {
        kind.close(c);
        conn = null;
      }
      setTimeout(step, every);
    }));
  };
  step();
}

function finish() {
  console.log(JSON.stringify({ seconds, ...stats }));
  process.exit(0);
}

loop("fresh", false);
loop("reused", true);
