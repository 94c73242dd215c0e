'use strict';
// percore (proxy mode), loaded before the app with --require. It keeps the
// promises percore's proxy makes about a worker's connections:
//
// - The app's server.listen(process.env.PORT) listens on 127.0.0.1 only
//   (PORT may also be the path of a Unix socket, which stays as it is),
//   whatever host the app or its framework names (many bind every
//   interface, and some read HOST or HOSTNAME from elsewhere): only percore
//   reaches a worker, so nobody skips its request checks.
// - When percore passes a Unix socket (PERCORE_UPSTREAM_FD), that
//   listen(PORT) listens on it instead, which costs percore less per
//   request than loopback TCP. The app does not see the difference:
//   server.address() is { address: '127.0.0.1', family: 'IPv4', port:
//   Number(PORT) }, and each connection's remoteAddress, localAddress and
//   localPort read as they would over loopback TCP. Where the socket
//   cannot be taken (a wrapper did not pass it on, a worker of the app's
//   own cluster module, a worker thread, a second listen on PORT), listen
//   is as above, and percore reaches the worker over TCP.
// - Each answer carries its request's token. percore sends a fresh one with
//   every request in X-Percore-Token; this takes it out of the request the
//   app sees and puts it into the answer's head. percore delivers an answer
//   on a kept-alive connection only with its request's token, so bytes an
//   app writes after a response ended can never reach another client.
// - Bytes an app writes to a connection outside Node's own response
//   writing, once that connection carried an answer (a timer's late
//   socket.write, say), are not written: the connection is closed instead.
// - The process whose server listens on PORT answers percore's health
//   checks on a private ping listener of its own, out of the app's sight.
const net = require('net');
const http = require('http');

const port = process.env.PORT;
const tokenField = 'x-percore-token';
const kToken = Symbol('percore.token');
const kAnswered = Symbol('percore.answered');
const kGuarded = Symbol('percore.guarded');
const kClientError = Symbol('percore.clientError'); // the token of the request being refused

const worker = process.env.PERCORE_WORKER_ID;

function say(msg) {
  const who = worker === undefined ? '' : ' worker ' + worker + ' (pid ' + process.pid + ')';
  process.stderr.write('percore:' + who + ': ' + msg + '\n');
}

// target is what a listen call names: a port, a path, or undefined for a
// handle or descriptor.
function target(args) {
  let a = args[0];
  if (Array.isArray(a)) a = a[0];
  if (typeof a === 'number' || typeof a === 'string') return String(a);
  if (a && typeof a === 'object') {
    if (a.path !== undefined) return String(a.path);
    if (a.port !== undefined) return String(a.port);
  }
  return undefined;
}

// onLoopback rewrites listen's arguments so that the server listens on
// 127.0.0.1: listen(port[, host][, backlog][, cb]) or listen(options[, cb]).
function onLoopback(args) {
  const out = args.slice();
  if (typeof out[0] === 'object' && out[0] !== null) {
    out[0] = Object.assign({}, out[0], { host: '127.0.0.1' });
    delete out[0].ipv6Only;
    return out;
  }
  if (typeof out[1] === 'string' || out[1] === undefined || out[1] === null) {
    out[1] = '127.0.0.1';
  } else {
    out.splice(1, 0, '127.0.0.1'); // listen(port, backlog, cb) or listen(port, cb)
  }
  return out;
}

// takeToken moves the request's token from what the app sees to its
// connection, whose answer's head then carries it (percore sends one
// request at a time on a connection). Node has built req.headers by now;
// both it and rawHeaders lose the token. percore sends it as the last
// field, so neither is reshaped: the array is shortened, and the object
// loses its newest property, which V8 undoes without leaving its fast
// shape. The connection's property exists from the start (guard), so
// setting it per request changes no object's shape either.
function takeToken(req) {
  const raw = req && req.rawHeaders; // an app may emit 'request' itself, with anything
  if (!Array.isArray(raw)) return;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    const name = raw[i];
    if (name.length === tokenField.length && name.toLowerCase() === tokenField) {
      const socket = req.socket;
      if (socket && socket[kGuarded]) socket[kToken] = raw[i + 1];
      if (i === raw.length - 2) raw.length = i;
      else raw.splice(i, 2);
      delete req.headers[tokenField];
      return;
    }
  }
}

// rawToken returns the token among a request's raw headers, if any.
function rawToken(req) {
  const raw = req && req.rawHeaders;
  if (!raw) return undefined;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    const name = raw[i];
    if (name.length === tokenField.length && name.toLowerCase() === tokenField) return raw[i + 1];
  }
  return undefined;
}

// Node writes an answer through these; a write to the connection from
// anywhere else, on a connection that already carried an answer, is the
// app's, outside any response.
let nodeWriting = 0;
function ownWrites(proto, name) {
  const orig = proto[name];
  if (typeof orig !== 'function') return;
  proto[name] = function percoreOwnWrite() {
    nodeWriting++;
    try {
      return orig.apply(this, arguments);
    } finally {
      nodeWriting--;
    }
  };
}

let warnedLate = false;
function refuseLate(socket) {
  if (!warnedLate) {
    warnedLate = true;
    say('the app wrote to a connection outside any response (after an answer ended, or past the one being ' +
      'written); the connection was closed instead, so that those bytes reach no other client');
  }
  socket.destroy();
  return false;
}

// guard makes the app's own writes to an HTTP connection that carried an
// answer close it. Upgraded connections (WebSocket) are the app's to write.
// It also gives the connection, from the start, the properties each
// request then sets, so that no object changes shape per request.
function guard(socket) {
  if (socket[kGuarded]) return;
  socket[kGuarded] = true;
  socket[kToken] = undefined;
  socket[kAnswered] = false;
  socket[kClientError] = undefined;
  const write = socket.write;
  const end = socket.end;
  socket.write = function percoreWrite() {
    const refusing = this[kClientError];
    if (refusing !== undefined) {
      const args = Array.prototype.slice.call(arguments);
      if (refusing !== null) {
        this[kClientError] = null;
        args[0] = stampAnswer(args[0], refusing);
      }
      return write.apply(this, args);
    }
    if (nodeWriting === 0 && this[kAnswered] && this.parser) return refuseLate(this);
    return write.apply(this, arguments);
  };
  socket.end = function percoreEnd(...args) {
    const data = typeof args[0] === 'function' ? undefined : args[0];
    const refusing = this[kClientError];
    if (refusing !== undefined) {
      if (refusing !== null && data != null) {
        this[kClientError] = null;
        args[0] = stampAnswer(data, refusing);
      }
      return end.apply(this, args);
    }
    if (data != null && nodeWriting === 0 && this[kAnswered] && this.parser) return refuseLate(this);
    return end.apply(this, args);
  };
}

// clientErrorAnswers are node's own answers to a request it cannot parse
// (node 20's _http_server.js), which it writes when the app has no
// 'clientError' listener.
const clientErrorAnswers = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

// packetToken returns the token in the raw bytes of a request node could
// not parse, if any.
function packetToken(err) {
  if (!err || !Buffer.isBuffer(err.rawPacket)) return undefined;
  const m = /\r\nx-percore-token:[ \t]*([0-9a-f]{16})[ \t]*\r\n/i.exec(err.rawPacket.toString('latin1'));
  return m ? m[1] : undefined;
}

// stampAnswer puts the token field after the status line of an answer the
// app writes itself to a request node could not parse.
function stampAnswer(data, tok) {
  const text = Buffer.isBuffer(data) ? data.toString('latin1') : typeof data === 'string' ? data : undefined;
  if (text === undefined || !text.startsWith('HTTP/')) return data;
  const i = text.indexOf('\r\n');
  if (i < 0) return data;
  const out = text.slice(0, i + 2) + tokenField + ': ' + tok + '\r\n' + text.slice(i + 2);
  return Buffer.isBuffer(data) ? Buffer.from(out, 'latin1') : out;
}

// answerClientError does what node does for a request it cannot parse, with
// the request's token, read from its raw bytes, in the answer's head, so that
// percore can deliver the answer on a kept-alive connection too.
function answerClientError(err, socket) {
  if (socket.writable && (!socket._httpMessage || !socket._httpMessage._headerSent)) {
    const status = clientErrorAnswers[err && err.code] || '400 Bad Request';
    const t = packetToken(err);
    const tok = t === undefined ? '' : tokenField + ': ' + t + '\r\n';
    nodeWriting++;
    try {
      socket.write('HTTP/1.1 ' + status + '\r\n' + tok + 'Connection: close\r\n\r\n');
    } finally {
      nodeWriting--;
    }
  }
  socket.destroy(err);
}

function install(server) {
  server.prependListener('connection', guard);
  // The token is taken out before any listener sees the request; node
  // answers a request it cannot parse itself, unless the app listens for
  // 'clientError', and that answer is taken over, with the token. One
  // wrapper of emit does both, as a listener of 'request' would cost every
  // request a copy of the listener list.
  const emit = server.emit;
  server.emit = function percoreEmit(event, a, b) {
    switch (event) {
      case 'request':
      case 'checkContinue':
      case 'checkExpectation':
        takeToken(a);
        break;
      case 'clientError':
        return clientError(this, emit, arguments);
    }
    switch (arguments.length) {
      case 1: return emit.call(this, event);
      case 2: return emit.call(this, event, a);
      case 3: return emit.call(this, event, a, b);
      default: return emit.apply(this, arguments);
    }
  };
}

// clientError emits a 'clientError' (err, socket) to the app's listeners,
// or answers it as node would, with the token.
function clientError(server, emit, args) {
  const err = args[1];
  const socket = args[2];
  if (server.listenerCount('clientError') === 0) {
    answerClientError(err, socket);
    return true;
  }
  // The app answers it: what it writes meanwhile is its answer to that
  // request, given the request's token.
  const tok = packetToken(err);
  if (socket) socket[kClientError] = tok === undefined ? null : tok;
  try {
    return emit.apply(server, args);
  } finally {
    if (socket) socket[kClientError] = undefined;
  }
}

// The Unix socket percore passes, for the first listen(PORT) of the
// process that serves it.
const upstreamFdVar = 'PERCORE_UPSTREAM_FD';
const upstreamInodeVar = 'PERCORE_UPSTREAM_INODE';
const kUpstream = Symbol('percore.upstream');
let upstreamTaken = false;

// takeUpstream returns the descriptor of the Unix socket percore passed,
// and takes it out of the environment, the first time only; undefined
// when there is none to take. A worker of the app's own cluster module, or
// a worker thread, leaves it alone: each would share the one socket with
// the others.
function takeUpstream() {
  if (upstreamTaken) return undefined;
  const v = process.env[upstreamFdVar];
  if (v === undefined) return undefined;
  if (require('cluster').isWorker || !require('worker_threads').isMainThread) return undefined;
  upstreamTaken = true;
  const inode = process.env[upstreamInodeVar];
  delete process.env[upstreamFdVar];
  delete process.env[upstreamInodeVar];
  const fd = Number(v);
  let ok = false;
  try {
    const st = require('fs').fstatSync(fd, { bigint: true });
    ok = st.isSocket() && (!inode || st.ino.toString() === inode);
  } catch {
    ok = false;
  }
  if (!ok) {
    say('descriptor ' + v + ' is not the Unix socket percore passed (a wrapper such as npm did not pass it on); ' +
      'the app listens on PORT=' + port + ' over loopback TCP, where percore reaches it');
    return undefined;
  }
  return fd;
}

// tcpLike is what a connection to the server on the Unix socket reads as:
// a connection from percore over loopback TCP to PORT. remotePort stays
// undefined: percore's end of a Unix socket has no port.
const tcpLike = {
  remoteAddress: { value: '127.0.0.1', configurable: true, writable: true },
  remoteFamily: { value: 'IPv4', configurable: true, writable: true },
  localAddress: { value: '127.0.0.1', configurable: true, writable: true },
  localPort: { value: Number(port), configurable: true, writable: true },
  localFamily: { value: 'IPv4', configurable: true, writable: true },
  // Node throws for a socket that is not TCP; a Unix socket has no reset,
  // so the connection ends as percore sees a reset: without an answer.
  resetAndDestroy: { value: function percoreResetAndDestroy() { return this.destroy(); }, configurable: true, writable: true },
};

function asTCP(socket) {
  Object.defineProperties(socket, tcpLike);
}

// listenUpstream makes server listen on the inherited socket fd, as the
// app's listen(args) would have listened on PORT: the callback and the
// 'listening' event as usual, server.address() as over TCP.
function listenUpstream(server, fd, args, listen) {
  const opts = { fd };
  const o = args[0];
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    if (o.backlog !== undefined) opts.backlog = o.backlog;
    if (o.signal !== undefined) opts.signal = o.signal;
  }
  server[kUpstream] = true;
  server.once('close', () => { server[kUpstream] = false; });
  server.prependListener('connection', asTCP);
  const address = server.address;
  server.address = function percoreAddress() {
    if (!this[kUpstream] || !this._handle) return address.call(this);
    return { address: '127.0.0.1', family: 'IPv4', port: Number(port) };
  };
  const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
  return cb ? listen.call(server, opts, cb) : listen.call(server, opts);
}

// The ping listener of percore's health checks, at PERCORE_PING (a loopback
// port, or a Unix socket's path). percore sends "ping\n" and this process
// answers "pong\n" from its event loop: that proves the loop runs (a TCP
// connect alone would not: the kernel completes handshakes while the loop is
// blocked), whatever the app's server speaks, and the app's handlers and
// logs never see it. Only the process that listens on PORT takes the
// address: a wrapper such as npm, which loads this preload too, leaves it
// to its child, and the children of the process that took it do not
// inherit it.
const pingVar = 'PERCORE_PING';
let pingTaken = false;

// takePing returns the ping address and takes it out of the environment,
// the first time only. A worker of the app's own cluster module leaves it
// alone: its listen(PORT) is the primary's, which takes it.
function takePing() {
  if (pingTaken || require('cluster').isWorker) return undefined;
  pingTaken = true;
  const addr = process.env[pingVar];
  delete process.env[pingVar];
  return addr || undefined;
}

// openPing opens the ping listener (ping.js) at addr with listen, net's
// own listen. It never keeps the process alive, and closes with server.
function openPing(server, addr, listen) {
  const p = openPingListener(addr, listen, (err) => say('private ping listener on ' + addr + ': ' + err.message +
    '; percore checks this worker with OPTIONS * instead'));
  server.once('close', () => p.close());
}

function setup() {
  if (!port) return;
  const OutgoingMessage = http.OutgoingMessage;
  ownWrites(OutgoingMessage.prototype, '_writeRaw');
  ownWrites(OutgoingMessage.prototype, '_flushOutput');
  // The token goes into the answer's head as its first field, whichever
  // way the app writes the head: writeHead, setHeader and an implicit
  // head all end in _storeHeader, and a head given to writeHead whole
  // stays on node's fast path (no setHeader before it).
  const response = http.ServerResponse.prototype;
  const storeHeader = response._storeHeader;
  response._storeHeader = function percoreStoreHeader(firstLine, headers) {
    const socket = this.socket;
    let tok;
    if (socket && socket[kGuarded]) {
      tok = socket[kToken];
      socket[kToken] = undefined;
      socket[kAnswered] = true;
    }
    // A request node answers itself (417 to an unknown Expect) may never
    // have reached 'request': its token is still among its raw headers.
    if (tok === undefined) tok = rawToken(this.req);
    if (tok !== undefined) firstLine += tokenField + ': ' + tok + '\r\n';
    return storeHeader.call(this, firstLine, headers);
  };
  const listen = net.Server.prototype.listen;
  const tcp = /^[0-9]+$/.test(port); // else the path of a Unix socket
  net.Server.prototype.listen = function percoreListen(...args) {
    if (target(args) !== port) return listen.apply(this, args);
    if (this instanceof http.Server) install(this);
    const ping = takePing();
    if (ping) this.once('listening', () => openPing(this, ping, listen));
    const fd = tcp ? takeUpstream() : undefined;
    if (fd !== undefined) return listenUpstream(this, fd, args, listen);
    return listen.apply(this, tcp ? onLoopback(args) : args);
  };
}

setup();
