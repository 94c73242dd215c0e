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
// one whose next request is already on its way. An HTTP/1 app that stops
// itself (its own SIGTERM or SIGINT handler, or a framework's) gets the
// signal only once the server has stopped accepting and its connections
// have ended, or handlerWait after the signal: its handler may then destroy
// every socket it holds without resetting a request. The process that takes the socket
// also answers percore's health checks on a private ping listener, whatever
// protocol the app speaks.
//
// What cannot work is refused at once, with exit code refusedCode and a
// message that says why: the cluster module (its workers would share the
// one socket of the slot; percore already runs one worker per CPU), a server
// on PORT handed to a child process, and a second listen on PORT.
//
// Deno loads it too (deno run --preload), for apps that serve with node:http
// or node:net, whose listen({fd}) serves an inherited socket in Deno as in
// Node. Deno.serve and Deno.listen take no descriptor: an app that serves
// PORT with them is refused. Bun loads it (bun --preload) for apps that
// serve with node:net or node:http2, which are net servers in Bun too;
// Bun.serve takes no descriptor and Bun's node:http, not a net server,
// ignores one: an app that serves PORT with them is refused.
const net = require('net');
const fs = require('fs');

// deno is Deno's namespace when Deno runs this preload, bun Bun's when Bun
// does.
const deno = typeof Deno === 'object' && Deno !== null ? Deno : undefined;
const bun = typeof Bun === 'object' && Bun !== null ? Bun : undefined;

// denoGrants reports whether Deno grants a permission without asking (Node
// grants every one).
function denoGrants(desc) {
  if (!deno) return true;
  try {
    return deno.permissions.querySync(desc).state === 'granted';
  } catch {
    return false;
  }
}

// directVars are the variables this preload reads; Deno needs --allow-env
// for them.
const directVars = ['PERCORE_DIRECT_FD', 'PERCORE_DIRECT_INODE', 'PERCORE_DIRECT_HEALTH', 'PERCORE_PING', 'PORT'];

// envDenied names the first of directVars that Deno may not read, or ''.
function envDenied() {
  return directVars.find((name) => !denoGrants({ name: 'env', variable: name })) || '';
}

const denied = envDenied();
const env = denied ? {} : process.env;
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

// refusedCode is the exit code with which this preload refuses the app;
// percore then stops at once instead of restarting the worker
// (jsruntime.RefusedExitCode).
const refusedCode = 78;

// refuse says why the app cannot run in direct mode and exits.
function refuse(msg) {
  say('refused: ' + msg);
  process.exit(refusedCode);
}

// advice ends each refusal.
const advice = 'percore already runs one worker per CPU, each on a public socket of its own: remove the ' +
  'cluster module (serve from the process percore starts; --workers sets how many), or use --mode proxy';

// inherited tells whether descriptor fd is the socket percore passed: a
// wrapper may have closed it, or put something else there.
function inherited() {
  if (deno) return denoInherited();
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.isSocket() && (!inode || st.ino.toString() === inode);
  } catch {
    return false;
  }
}

// denoInherited is inherited for Deno, whose node:fs knows only the
// descriptors it opened itself: it reads the descriptor's link in /proc.
// Without --allow-read for it the descriptor is taken as passed: Deno's
// wrappers (deno task) never load this preload.
function denoInherited() {
  const link = '/proc/self/fd/' + fd;
  if (!denoGrants({ name: 'read', path: link })) return true;
  try {
    const got = fs.readlinkSync(link);
    return inode ? got === 'socket:[' + inode + ']' : got.startsWith('socket:[');
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

// The connections queued for a slot without a serving worker reach this
// worker over the IPC channel percore opens for it with NODE_CHANNEL_FD
// (node set up process.channel and process.send before this preload ran):
// each one is the client's connection itself, passed as Node's cluster
// module passes handles, so the app sees the client's own address. Their
// message's cmd starts with NODE_, so node emits it as 'internalMessage'
// and the app's 'message' listeners never see it.
const passedCmd = 'NODE_PERCORE_CONNECTION';

// tell sends percore one of the preload's messages; a channel gone is no
// error (the callback takes it).
function tell(cmd) {
  if (process.connected) process.send({ cmd }, () => {});
}

// adopt hands server a passed socket as net's onconnection hands it one it
// accepted: with the server's options, counted as its own connection (so
// that server.close() waits for it), then as a 'connection' event.
function adopt(server, socket) {
  if (server.maxConnections && server._connections >= server.maxConnections) {
    socket.destroy();
    server.emit('drop');
    return;
  }
  socket.allowHalfOpen = Boolean(server.allowHalfOpen);
  if (server.pauseOnConnect) socket.pause();
  if (server.noDelay) socket.setNoDelay(true);
  if (server.keepAlive) socket.setKeepAlive(true, server.keepAliveInitialDelay);
  server._connections++;
  socket.server = server;
  socket._server = server;
  server.emit('connection', socket);
}

// takePassed hands server the connections percore passes, and tells
// percore that it takes them, then that it takes no more once the server
// closed. The channel never keeps the process alive (process.channel.unref,
// documented), even when the app listens for 'message': the server does.
function takePassed(server) {
  if (!process.channel || typeof process.send !== 'function') return; // no channel: nothing is passed
  process.channel.unref();
  process.on('internalMessage', (msg, socket) => {
    if (msg && msg.cmd === passedCmd && socket) adopt(server, socket);
  });
  tell('NODE_PERCORE_READY');
  server.once('close', () => tell('NODE_PERCORE_CLOSED'));
}

// The ping listener of percore's health checks (ping.js), at PERCORE_PING.
const pingVar = 'PERCORE_PING';

// openPing opens the ping listener at addr with listen, net's own listen.
// It never keeps the process alive, and closes with server.
function openPing(server, addr, listen) {
  const p = openPingListener(addr, listen, (err) => say('private ping listener on ' + addr + ': ' + err.message +
    '; percore checks this worker through its private health listener instead'));
  server.once('close', () => p.close());
  return p;
}

// idleGrace is how long, from the stop, no connection is closed as idle.
// Node's own server.close() closes at once every connection idle at that
// instant, so a keep-alive client's next request, already on its way, met a
// reset; within the grace such a request is answered, with Connection: close.
const idleGrace = 1000;

// graceIdle makes server.closeIdleConnections, which server.close() calls,
// wait idleGrace from the stop. It returns the function that, at the stop,
// makes every later answer end its connection, then closes connections as
// they become idle; called again, it does nothing. It costs nothing until
// the stop. HTTP/1 servers only (it returns null for others): a 'request'
// listener would turn on an HTTP/2 server's compatibility layer beside the
// app's own 'stream' handler.
function graceIdle(server) {
  const closeIdle = server.closeIdleConnections;
  if (typeof closeIdle !== 'function') return null; // not HTTP/1
  let graceEnds = 0;
  server.closeIdleConnections = function percoreCloseIdle() {
    if (Date.now() >= graceEnds) closeIdle.call(this);
  };
  return () => {
    if (graceEnds !== 0) return;
    graceEnds = Date.now() + idleGrace;
    server.prependListener('request', (req, res) => { res.shouldKeepAlive = false; });
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    idle.unref();
  };
}

// handlerWait bounds, from the stop, how long the app's own stop handler
// waits for the server's connections to end. percore sends SIGKILL 2s
// (supervisor.HurryGrace) after the stop signal of a replaced worker: the
// handler keeps at least 0.75s of it.
const handlerWait = idleGrace + 250;

// connections tracks the connections of an HTTP/1 server, the private
// health listener's included (they reach the server's 'connection' event):
// a set entry and a 'close' listener for each.
function connections(server) {
  const all = new Set();
  server.on('connection', (socket) => {
    all.add(socket);
    socket.once('close', () => all.delete(socket));
  });
  return all;
}

// serving counts the connections in all that still carry HTTP: an
// upgraded one (a WebSocket), whose parser Node has freed, is the app's to
// close. Each answer under way that has not sent its head yet is made to end
// its connection, as the answers begun after the stop do.
function serving(all) {
  let n = 0;
  for (const socket of all) {
    if (socket.parser === null) continue;
    const res = socket._httpMessage;
    if (res && !res.headersSent) res.shouldKeepAlive = false;
    n++;
  }
  return n;
}

// closeEarly closes server to new connections now, ahead of the app's own
// stop handler, and makes the app's later server.close(cb) succeed: cb
// runs once the server is closed, without the ERR_SERVER_NOT_RUNNING a
// second close would give. The replacement on the same socket takes the
// new connections meanwhile.
function closeEarly(server) {
  let closed = false;
  server.once('close', () => { closed = true; });
  const close = server.close;
  close.call(server);
  server.close = function percoreClose(cb) {
    this.closeIdleConnections();
    if (typeof cb === 'function') {
      if (closed) process.nextTick(cb);
      else this.once('close', () => cb());
    }
    return this;
  };
}

// deferStop makes the app's own handlers of the stop signals wait, on an
// HTTP/1 server: at SIGTERM or SIGINT, when the app listens for it, the
// server stops accepting, every later answer ends its connection, idle
// connections are closed after idleGrace, and the signal reaches the app's
// handlers (and percore's own) once no connection carries HTTP any more,
// or handlerWait after the stop. The app's handlers are called once, with
// the signal's own arguments, by process.emit, so process.listenerCount,
// listeners(), once() and removeListener() behave as ever. A second signal
// meanwhile passes the first on at once, then itself. It returns the
// function that turns this on, given the server, its stop, and percore's
// own SIGTERM listener, which alone is no handler of the app.
function deferStop() {
  const emit = process.emit;
  let stop = null; // {server, stopIdle, own, all} once the server listens
  let pending = null; // the deferred signal's arguments
  let timer = null;
  const release = () => {
    clearInterval(timer);
    const args = pending;
    pending = null;
    emit.apply(process, args);
  };
  process.emit = function percoreEmit(type, ...rest) {
    if ((type !== 'SIGTERM' && type !== 'SIGINT') || stop === null || this !== process ||
      process.listeners(type).every((l) => l === stop.own)) {
      return emit.apply(this, [type, ...rest]);
    }
    if (pending !== null) {
      release();
      return emit.apply(this, [type, ...rest]);
    }
    pending = [type, ...rest];
    stop.stopIdle();
    closeEarly(stop.server);
    const until = Date.now() + handlerWait;
    // Not unref'd: with the server closed and its connections gone, this
    // timer keeps the process alive until the app's handlers have run.
    timer = setInterval(() => {
      if (serving(stop.all) === 0 || Date.now() >= until) release();
    }, 50);
    serving(stop.all);
    return true;
  };
  return (server, stopIdle, own) => {
    stop = { server, stopIdle, own, all: connections(server) };
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

// refuseCluster refuses the cluster module: its workers would share this
// slot's socket through this process, and the workers would not be
// percore's to start, check, measure or stop.
function refuseCluster() {
  const cluster = require('cluster');
  if (typeof cluster.fork !== 'function') return;
  cluster.fork = function percoreRefuseFork() {
    refuse('the app forks workers with the cluster module (cluster.fork); ' + advice);
  };
}

// refuseHandOver refuses a child process given the server on PORT
// (child.send(message, server)), as cluster's workers would be.
function refuseHandOver(isOurs) {
  const { ChildProcess } = require('child_process');
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function percoreSpawn(...args) {
    const out = spawn.apply(this, args);
    const send = this.send;
    if (typeof send === 'function') {
      this.send = function percoreSend(message, handle, ...rest) {
        if (handle && isOurs(handle)) {
          refuse('the app hands its server on PORT to a child process (child.send(message, server)); ' + advice);
        }
        return send.call(this, message, handle, ...rest);
      };
    }
    return out;
  };
}

// denoNoDescriptor is why Deno's own servers cannot serve the public socket.
const denoNoDescriptor = 'Deno.serve and Deno.listen take no descriptor, so they cannot serve the public ' +
  'socket percore keeps for this worker (listening on PORT themselves, the kernel would never hand them a ' +
  'connection); serve PORT with node:http (or node:net), whose listen is redirected to the socket, or use --mode proxy';

// refuseDenoServers refuses Deno.serve and Deno.listen on PORT.
function refuseDenoServers() {
  const names = [['serve', (a, b) => (typeof a === 'object' && a !== null ? a : b)], ['listen', (a) => a]];
  for (const [name, options] of names) {
    const orig = deno[name];
    if (typeof orig !== 'function') continue;
    deno[name] = function percoreRefuseOwnServer(...args) {
      const o = options(...args);
      if (o && typeof o === 'object' && o.port !== undefined && String(o.port) === port) {
        refuse('the app serves PORT with Deno.' + name + '; ' + denoNoDescriptor);
      }
      return orig.apply(this, args);
    };
  }
}

// bunNoDescriptor is why Bun's HTTP/1 servers cannot serve the public
// socket.
const bunNoDescriptor = 'Bun.serve takes no descriptor, and Bun\'s node:http ignores listen({fd}) and binds a ' +
  'port of its own, so neither can serve the public socket percore keeps for this worker (Bun serves it with ' +
  'node:net and node:http2 only); use --mode proxy';

// refuseBunServers refuses Bun.serve and node:http on PORT. Bun.serve
// without a port listens on BUN_PORT, else PORT.
function refuseBunServers() {
  const serve = bun.serve;
  if (typeof serve === 'function') {
    bun.serve = function percoreRefuseServe(opts, ...rest) {
      const p = opts && typeof opts === 'object' && opts.unix === undefined ? (opts.port ?? env.BUN_PORT ?? port) : undefined;
      if (p !== undefined && String(p) === port) refuse('the app serves PORT with Bun.serve; ' + bunNoDescriptor);
      return serve.call(this, opts, ...rest);
    };
  }
  const http = require('http');
  const listen = http.Server.prototype.listen;
  if (http.Server.prototype instanceof net.Server) return; // redirected with net's listen
  http.Server.prototype.listen = function percoreRefuseHTTP(...args) {
    if (target(args) === port) refuse('the app serves PORT with node:http; ' + bunNoDescriptor);
    return listen.apply(this, args);
  };
}

// mayListen reports whether the runtime lets this process listen at addr,
// a loopback port or a Unix socket's path.
function mayListen(addr) {
  if (/^[0-9]+$/.test(addr)) return denoGrants({ name: 'net', host: '127.0.0.1:' + addr });
  return denoGrants({ name: 'read', path: addr }) && denoGrants({ name: 'write', path: addr });
}

// denoNeeds refuses a Deno app that may not do what direct mode needs: read
// percore's variables, and listen on the private loopback listener.
function denoNeeds() {
  if (denied) {
    refuse('deno may not read ' + denied + ': --mode direct needs --allow-env for ' + directVars.join(', ') +
      ' (or -A)');
  }
  if (health && !mayListen(health)) {
    refuse('deno may not listen on ' + health + ', the private listener of percore\'s readiness and health ' +
      'checks: --mode direct needs --allow-net for 127.0.0.1 (or -A)');
  }
}

function setup() {
  if (deno) denoNeeds();
  if (!Number.isInteger(fd) || fd < 0 || !health) return;
  if (!inherited()) {
    say('descriptor ' + fd + ' is not the public socket percore passed (a wrapper such as npm does not ' +
      'pass it on); listen(PORT) is left alone and percore will refuse this worker: run node itself, ' +
      'or use --mode proxy');
    return;
  }
  refuseCluster();
  const deferOn = deferStop();
  if (deno) refuseDenoServers();
  if (bun) refuseBunServers();
  const listen = net.Server.prototype.listen;
  let server = null;
  refuseHandOver((handle) => server !== null && (handle === server || handle === server._handle));
  net.Server.prototype.listen = function percoreListen(...args) {
    const t = target(args);
    if (server !== null) {
      if (t !== port) return listen.apply(this, args);
      refuse('the app listens on PORT twice: a second listen(' + port + ') (' +
        (this === server ? 'the same server again' : 'another server') + '); only one server can serve ' +
        'the public socket: serve every route from one server, listen elsewhere for the other, or use --mode proxy');
    }
    if (t === undefined || t !== port) {
      if (t !== undefined && t !== '0') {
        say('the app listens on ' + t + ', not on PORT=' + port + '; only a server listening on ' +
          'process.env.PORT is reached through the public port');
      }
      return listen.apply(this, args);
    }
    server = this;
    // Taken here, not at start: a wrapper that loads this preload too
    // leaves it alone, and children started from now on do not inherit it.
    const ping = env[pingVar];
    delete env[pingVar];
    const sessions = new Set();
    server.on('session', (s) => { // HTTP/2
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
    });
    let h = null;
    server.once('listening', () => {
      h = openHealth(server, listen);
      if (ping && mayListen(ping)) openPing(server, ping, listen);
      takePassed(server);
    });
    const stopIdle = graceIdle(server);
    const percoreStop = () => {
      if (stopIdle) stopIdle();
      if (process.listenerCount('SIGTERM') > 1) return; // the app stops itself
      if (h) drain(server, sessions, h);
      else process.exit(0);
    };
    if (stopIdle) deferOn(server, stopIdle, percoreStop);
    process.prependListener('SIGTERM', percoreStop);
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    return cb ? listen.call(server, { fd }, cb) : listen.call(server, { fd });
  };
}

setup();
