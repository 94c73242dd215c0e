#!/usr/bin/env bash
# Installs http-graceful-shutdown, pinned, into $TOOLS/npm/gracefulshutdown
# for the direct-mode reload test of an app that stops as Nuxt's Nitro
# server does: with this package's SIGTERM handler, which destroys idle
# keep-alive connections at once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/npm-pinned.bash"

npm_pinned gracefulshutdown.sh gracefulshutdown "the http-graceful-shutdown reload test" \
	http-graceful-shutdown@3.1.14
