#!/usr/bin/env bash
# Installs Next.js with React, pinned, into $TOOLS/npm/next, and builds there
# once the app of cmd/percore/testdata/next-app (output: 'standalone') for
# the framework tests, which then build nothing. The build is redone only
# when the version of next or the app's sources change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/npm-pinned.bash"

readonly next_version=16.5.0
readonly react_version=19.3.1
readonly suite="the Next.js tests"
readonly app_dir="$TOOLS/npm/next"
readonly source_dir="$ROOT/cmd/percore/testdata/next-app"
# What the build was made from, and where (the build records its absolute
# paths); a different stamp means building again.
readonly stamp_file="$app_dir/.percore-built"

seconds_since() {
	echo $((SECONDS - $1))
}

started=$SECONDS
npm_pinned next.sh next "$suite" \
	"next@$next_version" "react@$react_version" "react-dom@$react_version"
echo "$suite: the packages took $(seconds_since "$started")s"

if [[ ! -f "$app_dir/node_modules/next/package.json" ]]; then
	exit 0 # npm_pinned said why the tests will skip
fi

stamp="$app_dir next@$next_version react@$react_version $(cd "$source_dir" &&
	find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [[ -f "$app_dir/.next/standalone/server.js" && -f "$stamp_file" &&
	"$(cat "$stamp_file")" == "$stamp" ]]; then
	echo "$suite: the app is already built at .tools/npm/next"
	exit 0
fi

# The app is built in the folder that holds node_modules, so that Next
# traces the standalone server's packages from there.
rm -rf "$app_dir/.next" "$app_dir/app" "$app_dir/next.config.js" "$stamp_file"
cp -R "$source_dir/." "$app_dir/"
started=$SECONDS
if ! (cd "$app_dir" && NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build \
	</dev/null >build.log 2>&1); then
	cat "$app_dir/build.log" >&2
	echo "next.sh: next build failed in .tools/npm/next (its output is above)" >&2
	exit 1
fi
# As Next's documentation says for output: 'standalone': the server serves
# the static files only when they are copied next to it.
cp -R "$app_dir/.next/static" "$app_dir/.next/standalone/.next/static"
echo "$stamp" >"$stamp_file"
echo "$suite: built the app in .tools/npm/next in $(seconds_since "$started")s"
