#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard test (cmd/percore
# dashboard_test.go), which drives the admin page in a headless browser. It
# runs as root with no stdin, as CI does; without root or apt-get it says so
# and the test skips.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "install-tools.d/chromium.sh: /usr/bin/chromium is missing and apt-get as root is not available; the dashboard test will skip" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update </dev/null >/dev/null || { echo "install-tools.d/chromium.sh: apt-get update failed" >&2; exit 1; }
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium </dev/null >/dev/null ||
	{ echo "install-tools.d/chromium.sh: cannot install chromium" >&2; exit 1; }
