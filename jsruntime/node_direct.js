'use strict';
// percore --mode direct, loaded before the app with --require. The app's
// server.listen(process.env.PORT) is redirected to the public socket percore
// passes as an inherited descriptor, so the kernel hands connections straight
// to this worker. Beside it, a private listener on PERCORE_DIRECT_HEALTH hands
// its connections to the same server, for percore's readiness and health
// checks. On SIGTERM every later answer ends its keep-alive connection, and,
// unless the app stops itself, the server stops accepting and the process
// exits when the last connection is gone. No connection is closed as idle
// in the first second of the stop: Node's own server.close() would reset
// one whose next request is already on its way.
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

// idleGrace is how long, from the stop, no connection is closed as idle.
// Node's own server.close() closes at once every connection idle at that
// instant, so a keep-alive client's next request, already on its way, met a
// reset; within the grace such a request is answered, with Connection: close.
const idleGrace = 1000;

// graceIdle makes server.closeIdleConnections, which server.close() calls,
// wait idleGrace from the stop. It returns the function that, at the stop,
// makes every later answer end its connection, then closes connections as
// they become idle. It costs nothing until the stop. HTTP/1 servers only: a
// 'request' listener would turn on an HTTP/2 server's compatibility layer
// beside the app's own 'stream' handler.
function graceIdle(server) {
  const closeIdle = server.closeIdleConnections;
  if (typeof closeIdle !== 'function') return () => {}; // not HTTP/1
  let graceEnds = 0;
  server.closeIdleConnections = function percoreCloseIdle() {
    if (Date.now() >= graceEnds) closeIdle.call(this);
  };
  return () => {
    graceEnds = Date.now() + idleGrace;
    server.prependListener('request', (req, res) => { res.shouldKeepAlive = false; });
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
    const stopIdle = graceIdle(server);
    process.prependListener('SIGTERM', function percoreStop() {
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
