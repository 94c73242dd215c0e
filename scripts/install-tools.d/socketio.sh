#!/usr/bin/env bash
# Installs the npm packages of the sticky-routing tests, pinned, into
# $TOOLS/npm/socketio: socket.io and its Node client (sessions followed with
# no flag), express and express-session (--affinity cookie). A package
# already present at its version is left as it is.
set -euo pipefail

readonly prefix="$TOOLS/npm/socketio"
readonly packages=(socket.io@4.8.1 socket.io-client@4.8.1 express@4.21.2 express-session@1.18.1)

# installed_version NAME prints the version of NAME under $prefix, or nothing.
installed_version() {
	local manifest="$prefix/node_modules/$1/package.json"
	[[ -f "$manifest" ]] || return 0
	node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null </dev/null || true
}

missing=()
for spec in "${packages[@]}"; do
	name=${spec%@*}
	version=${spec##*@}
	if [[ "$(installed_version "$name")" != "$version" ]]; then
		missing+=("$spec")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "socket.io, express-session test packages (already installed at .tools/npm/socketio)"
	exit 0
fi
if ! command -v npm >/dev/null; then
	echo "socketio.sh: npm not found; the socket.io and express-session tests will skip" >&2
	exit 0
fi
mkdir -p "$prefix"
# All at once: npm would remove the packages of an earlier call it was not told to keep.
if ! npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock \
	--loglevel=error "${packages[@]}" </dev/null >/dev/null; then
	echo "socketio.sh: npm could not install ${packages[*]} (npm's message is above)" >&2
	exit 1
fi
echo "installed ${packages[*]} into .tools/npm/socketio"
