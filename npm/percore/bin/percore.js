#!/usr/bin/env node
// The percore command of the percore npm package. percore itself is a Go
// binary: npm installs the one package of @percore/<os>-<cpu> that fits
// this machine (an optional dependency), and this launcher runs its binary
// with the same arguments, standard streams and environment, passes the
// signals percore acts on to it, and ends the way percore ended: with its
// exit code, or killed by the same signal.
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

function main() {
  let bin;
  try {
    bin = binaryPath();
  } catch (err) {
    process.stderr.write(err.message + "\n");
    process.exit(1);
  }
  const child = childProcess.spawn(bin, process.argv.slice(2), { stdio: "inherit" });
  const handlers = {};
  for (const sig of forwarded) {
    handlers[sig] = () => {
      if (terminalSignals.includes(sig) && inForeground()) {
        return; // percore has it from the terminal already
      }
      try {
        child.kill(sig);
      } catch (err) {
        // percore has exited; its exit event comes next
      }
    };
    process.on(sig, handlers[sig]);
  }
  child.on("error", (err) => {
    process.stderr.write("percore: cannot run " + bin + ": " + err.message + "\n" + otherWays + "\n");
    process.exit(err.code === "ENOENT" ? 127 : 126);
  });
  child.on("exit", (code, signal) => {
    if (signal === null) {
      process.exit(code);
    }
    // End the same way: the signal's default action on this process.
    for (const sig of forwarded) {
      process.removeListener(sig, handlers[sig]);
    }
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
