#!/usr/bin/env bash
# Installs @grpc/grpc-js, pinned, into $TOOLS/npm/grpc for the direct-mode
# gRPC test. A package already present at its version is left as it is.
set -euo pipefail

readonly prefix="$TOOLS/npm/grpc"
readonly spec="@grpc/grpc-js@1.14.7"
readonly manifest="$prefix/node_modules/@grpc/grpc-js/package.json"

if [[ -f "$manifest" ]] &&
	[[ "$(node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null </dev/null)" == "${spec##*@}" ]]; then
	echo "gRPC test package (already installed at .tools/npm/grpc)"
	exit 0
fi
if ! command -v npm >/dev/null; then
	echo "grpc.sh: npm not found; the gRPC test will skip" >&2
	exit 0
fi
mkdir -p "$prefix"
if ! npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock \
	--loglevel=error "$spec" </dev/null >/dev/null; then
	echo "grpc.sh: npm could not install $spec (npm's message is above)" >&2
	exit 1
fi
echo "gRPC test package $spec (installed at .tools/npm/grpc)"
