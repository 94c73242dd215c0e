#!/usr/bin/env bash
# Installs @grpc/grpc-js, pinned, into $TOOLS/npm/grpc for the direct-mode
# gRPC test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/npm-pinned.bash"

npm_pinned grpc.sh grpc "the gRPC test" @grpc/grpc-js@1.14.7
