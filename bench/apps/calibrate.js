// Prints how many spin rounds take one millisecond of CPU here: the median
// of five measurements of 100 ms each. bench/run passes it to the apps as
// BENCH_LOOPS_PER_MS, so every configuration burns the same work.
"use strict";
const { calibrate } = require("./common");
const runs = [];
for (let i = 0; i < 5; i++) runs.push(calibrate(100));
runs.sort((a, b) => a - b);
console.log(Math.round(runs[2]));
