'use strict';
// An HTTP/1 app that stops itself on SIGTERM, as STOP says:
//   graceful-shutdown: as Nuxt's Nitro server does on Node, with the npm
//     package http-graceful-shutdown (found through NODE_PATH), which
//     destroys idle keep-alive connections at once, waits for the others,
//     then exits;
//   destroy: closes its server and destroys every connection it holds.
// Its handler writes "stop handler ran pid PID" on stdout. GET / answers
// "hello from worker ID pid PID".
const http = require('http');

const server = http.createServer((req, res) => {
  res.end('hello from worker ' + process.env.PERCORE_WORKER_ID + ' pid ' + process.pid + '\n');
});
const ran = () => console.log('stop handler ran pid ' + process.pid);

switch (process.env.STOP) {
  case 'graceful-shutdown': {
    const listener = server.listen(Number(process.env.PORT), process.env.HOST);
    require('http-graceful-shutdown')(listener, {
      signals: 'SIGTERM SIGINT',
      timeout: 30000,
      forceExit: true,
      finally: ran,
    });
    break;
  }
  case 'destroy': {
    const sockets = new Set();
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    process.on('SIGTERM', () => {
      ran();
      server.close(() => process.exit(0));
      for (const socket of sockets) socket.destroy();
    });
    server.listen(Number(process.env.PORT), process.env.HOST);
    break;
  }
  default:
    throw new Error('STOP must be graceful-shutdown or destroy, not ' + process.env.STOP);
}
