'use strict';
// Listens on PORT the way LISTEN_STYLE says, as apps write it, and answers
// each request with what the app sees: PORT, server.address(), the
// connection's addresses, whether 'listening' and the listen callback
// fired, and the address of a second server on a port of its own.
const http = require('http');

const P = process.env.PORT;
const seen = { listening: false, callback: false };
let second = null;

function handle(req, res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    pid: process.pid, PORT: P, address: server.address(),
    remoteAddress: req.socket.remoteAddress, localAddress: req.socket.localAddress,
    localPort: req.socket.localPort, second: second && second.address(), ...seen,
  }));
}

const cb = () => { seen.callback = true; };
let server;
switch (process.env.LISTEN_STYLE) {
  case 'host-callback': // a raw server on every interface, the port a string
    server = http.createServer(handle).listen(P, '0.0.0.0', cb);
    break;
  case 'number':
    server = http.createServer(handle).listen(Number(P), cb);
    break;
  case 'options':
    server = http.createServer(handle).listen({ port: Number(P) }, cb);
    break;
  case 'options-host':
    server = http.createServer(handle).listen({ port: P, host: '::', backlog: 100 }, cb);
    break;
  case 'express': {
    const app = require('express')();
    app.get('/', handle);
    server = app.listen(P, cb);
    break;
  }
  default:
    throw new Error('unknown LISTEN_STYLE ' + process.env.LISTEN_STYLE);
}
server.on('listening', () => { seen.listening = true; });
second = http.createServer((req, res) => res.end('second')).listen(0, '127.0.0.1');
