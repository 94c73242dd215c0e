// Light load on a server that does not speak HTTP/1.1: one request every
// 50 ms, each on a new connection, until standard input ends; then it
// prints {"ok":N,"failed":N,"errors":[...]} on one line.
//   node protocol-load.js echo|h2|grpc HOST:PORT
// grpc needs GRPC_JS, the path of @grpc/grpc-js (see grpc-echo.js).
const net = require("node:net");
const http2 = require("node:http2");

const [proto, addr] = process.argv.slice(2);
const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];

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

function echo(cb) {
  const s = net.connect(port, host);
  let got = "";
  s.setTimeout(5000, () => s.destroy(new Error("echo: no answer within 5 s")));
  s.on("connect", () => s.write("hello\n"));
  s.on("data", (d) => {
    got += d;
    if (!got.includes("\n")) return;
    s.end();
    cb(got === "hello\n" ? null : new Error("echo: got " + JSON.stringify(got)));
  });
  s.on("error", cb);
}

function h2(cb) {
  const session = http2.connect("http://" + addr);
  session.on("error", cb);
  session.setTimeout(5000, () => session.destroy(new Error("h2: no answer within 5 s")));
  const req = session.request({ ":path": "/hello" });
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (d) => { body += d; });
  req.on("error", cb);
  req.on("end", () => {
    session.close();
    cb(body.startsWith("h2 /hello") ? null : new Error("h2: got " + JSON.stringify(body)));
  });
  req.end();
}

let grpcClient;
function grpc(cb) {
  if (!grpcClient) {
    const grpc = require(process.env.GRPC_JS);
    const json = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString()) };
    grpcClient = grpc.makeGenericClientConstructor({
      say: {
        path: "/percore.Echo/Say", requestStream: false, responseStream: false,
        requestSerialize: json.serialize, requestDeserialize: json.deserialize,
        responseSerialize: json.serialize, responseDeserialize: json.deserialize,
      },
    }, "Echo");
    grpcClient.credentials = grpc.credentials;
  }
  const client = new grpcClient(addr, grpcClient.credentials.createInsecure());
  client.say({ text: "hi" }, { deadline: Date.now() + 5000 }, (err, res) => {
    client.close();
    cb(err || (res && res.text === "hi" ? null : new Error("grpc: got " + JSON.stringify(res))));
  });
}

const one = { echo, h2, grpc }[proto];
let ok = 0;
let failed = 0;
const errors = [];
let stopping = false;
process.stdin.on("end", () => { stopping = true; });
process.stdin.resume();

function next() {
  if (stopping) {
    console.log(JSON.stringify({ ok, failed, errors }));
    process.exit(0);
  }
  one(once((err) => {
    if (err) {
      failed++;
      if (errors.length < 5) errors.push(String(err.message || err));
    } else {
      ok++;
    }
    setTimeout(next, 50);
  }));
}
next();
