'use strict';
// An express app as its guides write it: app.listen(PORT) names no host,
// so Node listens on every interface (::, with IPv4 mapped in).
const express = require('express');

const app = express();
app.get('/', (req, res) => {
  res.send(`hello from express, worker ${process.env.PERCORE_WORKER_ID ?? 'none'}`);
});
app.listen(process.env.PORT);
