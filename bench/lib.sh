# bench/lib.sh is sourced by bench/run, bench/reload, bench/protocols and
# bench/preload: logging, the cleanup of every process a bench script
# starts, and the tools they need (PM2 from the npm registry into bench/.tools, percore and
# the bench's Go helpers built from this tree). The script sets BENCH (its
# directory) before sourcing it, and may define before_cleanup, which
# cleanup runs first.

ROOT="$(dirname "$BENCH")"
TOOLS="$BENCH/.tools"
APPS="$BENCH/apps"
RESULTS="$BENCH/results"
PM2_VERSION=7.0.4
SCRIPT="bench/$(basename "$0")"

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$SCRIPT: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
# Every process started here is a session leader (setsid), so its whole
# process group can be signalled. percore puts each worker in a group of its
# own, so the descendants of what we started are remembered and ended too.
LIVE_PIDS=()     # session leaders we started and have not stopped
PM2_RUNNING=0
TMP="$(mktemp -d /tmp/percore-bench.XXXXXX)"

descendants() { # pid -> its descendants, one per line (bounded depth)
  local frontier=("$1") next _ c
  for _ in 1 2 3 4 5 6; do
    next=()
    for p in "${frontier[@]}"; do
      for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
        echo "$c"; next+=("$c")
      done
    done
    [ ${#next[@]} -eq 0 ] && break
    frontier=("${next[@]}")
  done
}

alive() { # pid: running, not a zombie (one read of /proc: bash may reap it meanwhile)
  local st
  st="$(cat /proc/"$1"/stat 2>/dev/null)" || return 1
  st="${st##*) }"
  case "${st%% *}" in Z|X|"") return 1 ;; esac
}

# stop_tree pid: TERM the process (the balancer stops its own workers), wait a
# bounded time, then KILL its group and the groups of its descendants.
stop_tree() {
  local pid="$1" kids i p
  kids="$(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  # percore gets --shutdown-timeout 3s; give it a little more than that.
  for i in $(seq 1 80); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then
    log "  pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) did not exit within 4 s of SIGTERM: killed"
  fi
  kill -KILL -- -"$pid" 2>/dev/null || true
  for p in $kids; do
    if alive "$p"; then kill -KILL -- -"$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; fi
  done
  wait "$pid" 2>/dev/null || true
  local rest=()
  for p in "${LIVE_PIDS[@]}"; do [ "$p" != "$pid" ] && rest+=("$p"); done
  LIVE_PIDS=("${rest[@]+"${rest[@]}"}")
}

# PM2: the command of the PM2 installed in bench/.tools, with its home there too.
PM2=(env PM2_HOME="$TOOLS/pm2-home" "$TOOLS/node_modules/.bin/pm2")

stop_pm2() {
  local god kids i p
  [ -f "$TOOLS/pm2-home/pm2.pid" ] || { PM2_RUNNING=0; return 0; }
  god="$(cat "$TOOLS/pm2-home/pm2.pid" 2>/dev/null || true)"
  kids=""; [ -n "$god" ] && kids="$(descendants "$god")"
  timeout 15 bash -c 'PM2_HOME="$1/pm2-home" "$1/node_modules/.bin/pm2" kill' _ "$TOOLS" >/dev/null 2>&1 || true
  for i in $(seq 1 40); do { [ -n "$god" ] && alive "$god"; } || break; sleep 0.05; done
  for p in $god $kids; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$TOOLS/pm2-home/pm2.pid"
  PM2_RUNNING=0
}

cleanup() {
  local status=$?
  if declare -F before_cleanup >/dev/null; then before_cleanup; fi
  for p in "${LIVE_PIDS[@]+"${LIVE_PIDS[@]}"}"; do stop_tree "$p"; done
  [ "$PM2_RUNNING" = 1 ] && stop_pm2
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
# install_pm2: pm2@PM2_VERSION into bench/.tools, unless it is there; a
# failure is logged, and the PM2 configuration is then left out.
install_pm2() {
  if [ ! -x "$TOOLS/node_modules/.bin/pm2" ]; then
    log "installing pm2@$PM2_VERSION into bench/.tools"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >"$TMP/npm.log" 2>&1 ||
      { log "pm2 not installed, its column stays empty:"; tail -5 "$TMP/npm.log" >&2; }
  fi
}

# build_tools helper...: percore into bench/.tools/bin, built as the
# Dockerfile builds it (static, without cgo), and each bench/<helper> beside it.
build_tools() {
  local h
  log "building percore"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$TOOLS/bin/percore" ./cmd/percore &&
    for h in "$@"; do go build -o "$TOOLS/bin/$h" "./bench/$h" || exit 1; done)
}
