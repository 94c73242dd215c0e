// mixed: 95% of requests are fast and one in twenty uses about 20 ms of CPU,
// so a slow request can hold up fast ones queued behind it on the same
// worker. It counts per process, so every worker gets the same mix.
"use strict";
const { burn, serve } = require("./common");
let n = 0;
serve(() => {
  n++;
  if (n % 20 === 0) {
    burn(20);
    return "slow\n";
  }
  return "fast\n";
});
