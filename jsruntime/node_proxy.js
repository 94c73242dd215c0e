'use strict';
// percore (proxy mode), loaded before the app with --require. It keeps the
// promises percore's proxy makes about a worker's connections:
//
// - The app's server.listen(process.env.PORT) listens on 127.0.0.1 only
//   (PORT may also be the path of a Unix socket, which stays as it is),
//   whatever host the app or its framework names (many bind every
//   interface, and some read HOST or HOSTNAME from elsewhere): only percore
//   reaches a worker, so nobody skips its request checks.
// - Each answer carries its request's token. percore sends a fresh one with
//   every request in X-Percore-Token; this takes it out of the request the
//   app sees and puts it into the answer's head. percore delivers an answer
//   on a kept-alive connection only with its request's token, so bytes an
//   app writes after a response ended can never reach another client.
// - Bytes an app writes to a connection outside Node's own response
//   writing, once that connection carried an answer (a timer's late
//   socket.write, say), are not written: the connection is closed instead.
const net = require('net');
const http = require('http');

const port = process.env.PORT;
const tokenField = 'x-percore-token';
const kToken = Symbol('percore.token');
const kAnswered = Symbol('percore.answered');
const kGuarded = Symbol('percore.guarded');

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

// takeToken moves the request's token from what the app sees to the
// response. Node builds req.headers lazily from rawHeaders; both lose it.
function takeToken(req, res) {
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    const name = raw[i];
    if (name.length === tokenField.length && name.toLowerCase() === tokenField) {
      res[kToken] = raw[i + 1];
      raw.splice(i, 2);
      const headers = req.headers; // built now, without the token
      delete headers[tokenField];
      return;
    }
  }
}

// Node writes an answer through these; a write to the connection from
// anywhere else, on a connection that already carried an answer, is the
// app's, outside any response.
let nodeWriting = 0;
function ownWrites(proto, name) {
  const orig = proto[name];
  if (typeof orig !== 'function') return;
  proto[name] = function percoreOwnWrite(...args) {
    nodeWriting++;
    try {
      return orig.apply(this, args);
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
function guard(socket) {
  if (socket[kGuarded]) return;
  socket[kGuarded] = true;
  const write = socket.write;
  const end = socket.end;
  socket.write = function percoreWrite(...args) {
    if (nodeWriting === 0 && this[kAnswered] && this.parser) return refuseLate(this);
    return write.apply(this, args);
  };
  socket.end = function percoreEnd(...args) {
    const data = typeof args[0] === 'function' ? undefined : args[0];
    if (data != null && nodeWriting === 0 && this[kAnswered] && this.parser) return refuseLate(this);
    return end.apply(this, args);
  };
}

function install(server) {
  server.prependListener('connection', guard);
  server.prependListener('request', takeToken);
}

function setup() {
  if (!port) return;
  const OutgoingMessage = http.OutgoingMessage;
  ownWrites(OutgoingMessage.prototype, '_writeRaw');
  ownWrites(OutgoingMessage.prototype, '_flushOutput');
  const writeHead = http.ServerResponse.prototype.writeHead;
  http.ServerResponse.prototype.writeHead = function percoreWriteHead(...args) {
    const tok = this[kToken];
    if (tok !== undefined && !this._header) {
      this[kToken] = undefined;
      this.setHeader(tokenField, tok);
    }
    if (this.socket) this.socket[kAnswered] = true;
    return writeHead.apply(this, args);
  };
  const listen = net.Server.prototype.listen;
  const tcp = /^[0-9]+$/.test(port); // else the path of a Unix socket
  net.Server.prototype.listen = function percoreListen(...args) {
    if (target(args) !== port) return listen.apply(this, args);
    if (this instanceof http.Server) install(this);
    return listen.apply(this, tcp ? onLoopback(args) : args);
  };
}

setup();
