#!/usr/bin/env bash
# Installs request-ip, pinned, into $TOOLS/npm/requestip for the test of the
# client-address headers percore removes from untrusted peers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/npm-pinned.bash"

npm_pinned requestip.sh requestip "the request-ip test" request-ip@3.3.0
