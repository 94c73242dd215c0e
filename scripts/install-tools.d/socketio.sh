#!/usr/bin/env bash
# Installs the npm packages of the sticky-routing tests, pinned, into
# $TOOLS/npm/socketio: socket.io and its Node client (sessions followed with
# no flag), express and express-session (--affinity cookie).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/npm-pinned.bash"

npm_pinned socketio.sh socketio "the socket.io and express-session tests" \
	socket.io@4.8.1 socket.io-client@4.8.1 express@4.21.2 express-session@1.18.1
