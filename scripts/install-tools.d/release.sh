#!/usr/bin/env bash
# The release suite (cmd/percore/release_test.go) checks the release workflow
# with actionlint, pinned, built from the Go module proxy into $TOOLS/bin.
set -euo pipefail

readonly ACTIONLINT_VERSION=1.7.12

bin="$TOOLS/bin/actionlint"
if [[ -x "$bin" && "$("$bin" -version 2>/dev/null | head -n 1)" == "v$ACTIONLINT_VERSION" ]]; then
	echo "actionlint $ACTIONLINT_VERSION (already installed at .tools/bin/actionlint)"
	exit 0
fi
mkdir -p "$TOOLS/bin"
if ! GOBIN="$TOOLS/bin" go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION" </dev/null; then
	echo "release.sh: go could not install actionlint v$ACTIONLINT_VERSION (go's message is above)" >&2
	exit 1
fi
echo "actionlint $ACTIONLINT_VERSION (installed at .tools/bin/actionlint)"
