'use strict';
// percore --mode direct, loaded before the app with --require. The app's
// server.listen(process.env.PORT) is redirected to the public socket percore
// passes as an inherited descriptor, so the kernel hands connections straight
// to this worker. Beside it, a private listener on PERCORE_DIRECT_HEALTH hands
// its connections to the same server, for percore's readiness and health
// checks. On SIGTERM every later answer ends its keep-alive connection, and,
// unless the app stops itself, the server stops accepting and the process
// exits when the last connection is gone. A connection is closed as idle
// only once it has been quiet for a second: Node's own server.close() would
// reset one whose next request is already on its way.
const net = require('net');
const fs = require('fs');

const env = process.env;
const fd = Number(env.PERCORE_DIRECT_FD);
const inode = env.PERCORE_DIRECT_INODE;
const health = env.PERCORE_DIRECT_HEALTH;
const port = env.PORT;
// Child processes (npm scripts, forks) do not inherit the redirection.
delete env.PERCORE_DIRECT_FD;
delete env.PERCORE_DIRECT_INODE;
delete env.PERCORE_DIRECT_HEALTH;

function say(msg) {
  process.stderr.write('percore --mode direct: ' + msg + '\n');
}

// inherited tells whether descriptor fd is the socket percore passed: a
// wrapper may have closed it, or put something else there.
function inherited() {
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.isSocket() && (!inode || st.ino.toString() === inode);
  } catch {
    return false;
  }
}

// target is what a listen call names: a port, a path, or undefined for a
// handle or descriptor.
function target(args) {
  let a = args[0];
  if (Array.isArray(a)) a = a[0];
  if (typeof a === 'number' || typeof a === 'string') return String(a);
  if (a && typeof a === 'object') {
    if (a.port !== undefined) return String(a.port);
    if (a.path !== undefined) return String(a.path);
  }
  return undefined;
}

function openHealth(server, listen) {
  const h = net.createServer((socket) => {
    // Counted as the server's own, as net does for the public socket's, so
    // that server.close() waits for it too before the app exits.
    h._connections--;
    server._connections++;
    socket.server = server;
    socket._server = server;
    server.emit('connection', socket);
  });
  h.on('error', (err) => say('private health listener on ' + health + ': ' + err.message));
  if (/^[0-9]+$/.test(health)) listen.call(h, Number(health), '127.0.0.1');
  else listen.call(h, health);
  h.unref(); // the app's own server decides when the process may end
  server.once('close', () => h.close());
  return h;
}

// quietWait is how long a connection must have been quiet (accepted, or its
// last answer sent, and no request since) before a stop closes it as idle.
// Node's own server.close() closes every connection idle at that instant,
// so a keep-alive client's next request, already on its way, met a reset.
const quietWait = 1000;

// trackIdle makes server.closeIdleConnections, which server.close() calls,
// close only the connections quiet for quietWait. It returns the function
// that, at the stop, makes every later answer end its connection and starts
// closing connections as they become quiet. HTTP/1 servers only: a
// 'request' listener would turn on an HTTP/2 server's compatibility layer
// beside the app's own 'stream' handler.
function trackIdle(server) {
  if (typeof server.closeIdleConnections !== 'function') return () => {}; // not HTTP/1
  let stopping = false;
  const conns = new Set();
  server.on('connection', (socket) => {
    const c = { socket, quietSince: Date.now(), busy: 0 };
    conns.add(c);
    socket.once('close', () => conns.delete(c));
    socket.percoreConn = c;
  });
  server.prependListener('request', (req, res) => {
    const c = req.socket.percoreConn;
    if (!c) return;
    c.busy++;
    if (stopping) res.shouldKeepAlive = false;
    res.once('close', () => {
      c.busy--;
      c.quietSince = Date.now();
    });
  });
  server.closeIdleConnections = function percoreCloseIdle() {
    const now = Date.now();
    for (const c of conns) {
      if (c.busy === 0 && now - c.quietSince >= quietWait) c.socket.destroy();
    }
  };
  return () => {
    stopping = true;
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    idle.unref();
  };
}

// drain stops the server the way a graceful stop should: no new
// connections, HTTP/2 sessions sent GOAWAY, then exit once every connection
// is gone.
function drain(server, sessions, h) {
  for (const s of sessions) s.close();
  h.close();
  server.close(() => process.exit(0));
}

function setup() {
  if (!Number.isInteger(fd) || fd < 0 || !health) return;
  if (!inherited()) {
    say('descriptor ' + fd + ' is not the public socket percore passed (a wrapper such as npm does not ' +
      'pass it on); listen(PORT) is left alone and percore will refuse this worker: run node itself, ' +
      'or use --mode proxy');
    return;
  }
  const listen = net.Server.prototype.listen;
  let taken = false;
  net.Server.prototype.listen = function percoreListen(...args) {
    if (taken) return listen.apply(this, args);
    const t = target(args);
    if (t === undefined || t !== port) {
      if (t !== undefined && t !== '0') {
        say('the app listens on ' + t + ', not on PORT=' + port + '; only a server listening on ' +
          'process.env.PORT is reached through the public port');
      }
      return listen.apply(this, args);
    }
    taken = true;
    const server = this;
    const sessions = new Set();
    server.on('session', (s) => { // HTTP/2
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
    });
    let h = null;
    server.once('listening', () => { h = openHealth(server, listen); });
    const stopIdle = trackIdle(server);
    process.on('SIGTERM', function percoreStop() {
      stopIdle();
      if (process.listenerCount('SIGTERM') > 1) return; // the app stops itself
      if (h) drain(server, sessions, h);
      else process.exit(0);
    });
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    return cb ? listen.call(server, { fd }, cb) : listen.call(server, { fd });
  };
}

setup();
