
// ---- the ping listener, the same in every preload (jsruntime/ping.js) ----
// percore's health checks connect to a private listener at PERCORE_PING (a
// loopback port, or a Unix socket's path), send "ping\n" and expect
// "pong\n", answered from the worker's event loop: that proves the loop
// runs (a TCP connect alone would not: the kernel completes handshakes
// while the loop is blocked), whatever the app's server speaks (HTTP/2,
// gRPC, raw TCP), and the app's handlers and logs never see it. Function
// declarations only: percore appends this to each preload, whose own code
// runs first and calls them later.

// answerPing answers one connection of the ping listener.
function answerPing(socket) {
  socket.unref();
  socket.setTimeout(10000, () => socket.destroy());
  socket.on('error', () => {});
  let got = '';
  socket.on('data', (d) => {
    got += typeof d === 'string' ? d : d.toString('latin1');
    const nl = got.indexOf('\n');
    if (nl < 0 && got.length < 16) return;
    if (got.slice(0, nl) === 'ping') socket.end('pong\n');
    else socket.destroy();
  });
}

// openPingListener opens the ping listener at addr, calling listen (net's
// own, where the preload replaced Server.prototype.listen) on it, and
// hands its errors to onError. It never keeps the process alive.
function openPingListener(addr, listen, onError) {
  const p = net.createServer(answerPing);
  p.on('error', onError);
  if (/^[0-9]+$/.test(addr)) listen.call(p, { port: Number(addr), host: '127.0.0.1', exclusive: true });
  else listen.call(p, { path: addr, exclusive: true });
  p.unref();
  return p;
}
