#!/usr/bin/env node
// The percore command of the percore npm package. percore itself is a Go
// binary: npm installs the one package of @percore/<os>-<cpu> that fits
// this machine (an optional dependency), and this launcher runs its binary
// with the same arguments, standard streams and environment, passes the
// signals percore acts on to it, and ends the way percore ended: with its
// exit code, or killed by the same signal.
//
// npx and npm run start it through a shell (sh -c) and pass their SIGINT and
// SIGTERM to that shell only. dash (sh on Debian and Ubuntu) dies of the
// SIGTERM without a word to the launcher, and keeps the SIGINT until its
// command has ended. So the launcher watches: when its parent ends (or npm,
// above npm's shell), it stops percore as SIGTERM would; when npm's shell
// catches a signal, it passes percore a SIGINT. On Linux percore also asks
// the kernel to tell it when the launcher ends, even by SIGKILL, and then
// stops as on SIGTERM (PERCORE_LAUNCHER_PID): it never outlives the launcher.
//
// Required as a module, it tells where the binary is:
//   node -p 'require("percore").binaryPath()'
"use strict";

const childProcess = require("child_process");
const fs = require("fs");
const path = require("path");

// platformPackages maps process.platform and process.arch to the package
// holding that platform's binary.
const platformPackages = {
  "linux-x64": "@percore/linux-x64",
  "linux-arm64": "@percore/linux-arm64",
  "darwin-x64": "@percore/darwin-x64",
  "darwin-arm64": "@percore/darwin-arm64",
};

// forwarded are the signals percore acts on (docs/operations.md, "Signals, reloads, scaling and recycling").
const forwarded = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU"];

// terminalSignals are those a terminal sends to its whole foreground
// process group (Ctrl-C, Ctrl-\).
const terminalSignals = ["SIGINT", "SIGQUIT"];

const otherWays =
  "Other ways to install percore: a release binary from https://github.com/percore/percore/releases,\n" +
  "the image ghcr.io/percore/percore, or `go install github.com/percore/percore/cmd/percore@latest`.";

// binaryPath returns the path of this platform's percore binary, or throws
// an error whose message says what is missing and what else to do.
function binaryPath() {
  const platform = process.platform + "-" + process.arch;
  const pkg = platformPackages[platform];
  if (!pkg) {
    throw new Error(
      "percore: there is no percore build for " + platform + " (there are: " +
        Object.keys(platformPackages).join(", ") + ").\n" + otherWays,
    );
  }
  let manifest;
  try {
    manifest = require.resolve(pkg + "/package.json");
  } catch (err) {
    throw new Error(
      "percore: the package " + pkg + " that holds percore for " + platform + " is not installed.\n" +
        "npm installs it as an optional dependency of percore: install again without\n" +
        "--no-optional / --omit=optional, and with the same os and cpu as this machine.\n" + otherWays,
    );
  }
  return path.join(path.dirname(manifest), "bin", "percore");
}

// inForeground reports whether this process belongs to the foreground
// process group of its controlling terminal. A terminal sends Ctrl-C's
// SIGINT to that whole group, percore included, so passing it on too would
// be a second SIGINT, which percore takes as "stop fast". The price: a
// SIGINT that another program sends to this process alone while it runs in
// the foreground of a terminal is not passed on.
function inForeground() {
  try {
    let pgrp, tpgid;
    if (process.platform === "linux") {
      const stat = fs.readFileSync("/proc/self/stat", "utf8");
      // After "pid (comm) ": state ppid pgrp session tty_nr tpgid ...
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      pgrp = f[2];
      tpgid = f[5];
    } else {
      const out = childProcess.execFileSync("ps", ["-o", "pgid=,tpgid=", "-p", String(process.pid)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
      [pgrp, tpgid] = out.trim().split(/\s+/);
    }
    return Number(tpgid) > 0 && pgrp === tpgid;
  } catch (err) {
    return false;
  }
}

// watchInterval is how often, in ms, the launcher looks at its parent: no
// event tells one process that another has ended or caught a signal.
const watchInterval = 250;

// shellSignalDelay is how long, in ms, the launcher waits before it takes a
// signal caught by npm's shell as meant for percore, so that a signal sent to
// the whole process group (Ctrl-C) has reached the launcher first.
const shellSignalDelay = 150;

// ownSignalWindow is how long, in ms, after a signal reached the launcher
// itself a signal caught by npm's shell counts as the same one.
const ownSignalWindow = 1500;

// procStat returns the state and parent pid of a process from /proc, or
// null when it is gone.
function procStat(pid) {
  try {
    const stat = fs.readFileSync("/proc/" + pid + "/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: f[0], ppid: Number(f[1]) };
  } catch (err) {
    return null;
  }
}

// wakeups returns how many times a process has been scheduled off the CPU
// so far, or -1 when it is gone. A shell waiting for its command sleeps
// until a signal it catches (or its command's end or stop) wakes it.
function wakeups(pid) {
  try {
    const status = fs.readFileSync("/proc/" + pid + "/status", "utf8");
    let n = 0;
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) {
      n += Number(m[1]);
    }
    return n;
  } catch (err) {
    return -1;
  }
}

// npmAbove returns npm's pid when the launcher's parent ppid is the shell
// that npm (npx, npm run, npm exec) runs a command in, else 0. It reads
// /proc, so it says 0 off Linux.
function npmAbove(ppid) {
  if (process.platform !== "linux" || !process.env.npm_lifecycle_event) {
    return 0;
  }
  try {
    const argv = fs.readFileSync("/proc/" + ppid + "/cmdline", "utf8").split("\0");
    const stat = procStat(ppid);
    return argv[1] === "-c" && stat ? stat.ppid : 0;
  } catch (err) {
    return 0;
  }
}

// watchParent calls gone once when the launcher's parent ends, or npm ends
// above npm's shell (the shell outlives a SIGKILLed npm), and then stops
// watching. Under npm's shell it also calls shellSignal each time that
// shell catches a signal while the launcher runs: npm passes its SIGINT and
// SIGTERM to the shell only, a SIGTERM kills it (that is "gone"), and dash
// and bash keep a SIGINT until their command ends. ownSignal() tells when a
// signal last reached the launcher itself (Date.now() time), as a Ctrl-C
// does, since the shell's catch is then the same signal. It returns a
// function that stops the watch.
function watchParent(gone, shellSignal, ownSignal) {
  const parent = process.ppid;
  const npm = npmAbove(parent);
  let seen = npm ? wakeups(parent) : -1;
  let wasHalted = false;
  let last = Date.now();
  let pending = null;
  const timer = setInterval(() => {
    const now = Date.now();
    // A stop or a freeze (Ctrl-Z, a suspended machine) stops and wakes the
    // shell too: after one, the shell's count starts afresh.
    const paused = now - last > 4 * watchInterval;
    last = now;
    const shell = npm ? procStat(parent) : null;
    if (process.ppid !== parent || (npm && (!shell || shell.ppid !== npm))) {
      stop();
      gone();
      return;
    }
    if (!npm) {
      return;
    }
    // A stopped or traced shell wakes when it goes on: that is no signal.
    const halted = shell.state === "T" || shell.state === "t";
    const n = wakeups(parent);
    const woke = n !== seen && !paused && !halted && !wasHalted;
    seen = n;
    wasHalted = halted;
    if (woke && !pending) {
      const at = now;
      pending = setTimeout(() => {
        pending = null;
        if (at - ownSignal() > ownSignalWindow) {
          shellSignal();
        }
      }, shellSignalDelay);
    }
  }, watchInterval);
  timer.unref();
  function stop() {
    clearInterval(timer);
    if (pending) {
      clearTimeout(pending);
      pending = null;
    }
  }
  return stop;
}

function main() {
  let bin;
  try {
    bin = binaryPath();
  } catch (err) {
    process.stderr.write(err.message + "\n");
    process.exit(1);
  }
  // percore stops as on SIGTERM when this process ends (Linux tells it),
  // or at once if its parent is another one by the time it asks.
  const env = Object.assign({}, process.env, { PERCORE_LAUNCHER_PID: String(process.pid) });
  const child = childProcess.spawn(bin, process.argv.slice(2), { stdio: "inherit", env });
  let lastOwnSignal = 0; // Date.now() when a signal last reached this process
  let stopSent = false; // a SIGINT, SIGTERM or SIGQUIT went to percore
  const send = (sig) => {
    if (sig === "SIGINT" || sig === "SIGTERM" || sig === "SIGQUIT") {
      stopSent = true;
    }
    try {
      child.kill(sig);
    } catch (err) {
      // percore has exited; its exit event comes next
    }
  };
  const handlers = {};
  for (const sig of forwarded) {
    handlers[sig] = () => {
      lastOwnSignal = Date.now();
      if (terminalSignals.includes(sig) && inForeground()) {
        return; // percore has it from the terminal already
      }
      send(sig);
    };
    process.on(sig, handlers[sig]);
  }
  // After a stop, the whole process group (the shell too) goes on again.
  const onCont = () => {
    lastOwnSignal = Date.now();
  };
  process.on("SIGCONT", onCont);
  const stopWatch = watchParent(
    () => {
      if (!stopSent) {
        send("SIGTERM"); // whoever ran this is gone: stop as a SIGTERM would
      }
    },
    () => send("SIGINT"),
    () => lastOwnSignal,
  );
  child.on("error", (err) => {
    process.stderr.write("percore: cannot run " + bin + ": " + err.message + "\n" + otherWays + "\n");
    process.exit(err.code === "ENOENT" ? 127 : 126);
  });
  child.on("exit", (code, signal) => {
    stopWatch();
    if (signal === null) {
      process.exit(code);
    }
    // End the same way: the signal's default action on this process.
    for (const sig of forwarded) {
      process.removeListener(sig, handlers[sig]);
    }
    process.removeListener("SIGCONT", onCont);
    try {
      process.kill(process.pid, signal);
    } catch (err) {
      // fall through to the exit code a shell would show
    }
    // A signal this process ignores (SIGPIPE in Node) or that only stops it.
    setTimeout(() => process.exit(128 + (require("os").constants.signals[signal] || 0)), 100);
  });
}

if (require.main === module) {
  main();
} else {
  module.exports = { binaryPath };
}
