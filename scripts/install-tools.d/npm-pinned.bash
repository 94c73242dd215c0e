# Sourced by the scripts here that install npm packages for a test suite:
# npm_pinned installs pinned packages into one folder of $TOOLS/npm.

# npm_pinned SCRIPT FOLDER WHAT SPEC... installs the packages SPEC
# (name@version) into $TOOLS/npm/FOLDER, all in one npm call (npm would
# remove the packages of an earlier call it was not told to keep). Packages
# already present at their version are left as they are. Without npm it says
# that WHAT will skip and succeeds; when npm fails it names what it could not
# install and fails.
npm_pinned() {
	local script=$1 folder=$2 what=$3
	shift 3
	local prefix="$TOOLS/npm/$folder" spec manifest missing=()
	for spec in "$@"; do
		manifest="$prefix/node_modules/${spec%@*}/package.json"
		if [[ ! -f "$manifest" ]] ||
			[[ "$(node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null </dev/null || true)" != "${spec##*@}" ]]; then
			missing+=("$spec")
		fi
	done
	if ((${#missing[@]} == 0)); then
		echo "$what: $* (already installed at .tools/npm/$folder)"
		return 0
	fi
	if ! command -v npm >/dev/null; then
		echo "$script: npm not found; $what will skip" >&2
		return 0
	fi
	mkdir -p "$prefix"
	if ! npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock \
		--loglevel=error "$@" </dev/null >/dev/null; then
		echo "$script: npm could not install $* (npm's message is above)" >&2
		return 1
	fi
	echo "$what: installed $* into .tools/npm/$folder"
}
