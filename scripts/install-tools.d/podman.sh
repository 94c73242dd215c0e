#!/usr/bin/env bash
# Installs Debian's podman, runc and slirp4netns for the container test
# (examples/container_linux_test.go), which builds the example image and runs
# it with runc (crun 1.8 refuses hybrid cgroup hosts) and slirp4netns for
# its published loopback ports. It runs as root with no stdin, as CI does.
# Without root or apt-get it fails, saying so; the test then skips.
set -euo pipefail

if command -v podman >/dev/null && command -v runc >/dev/null && command -v slirp4netns >/dev/null; then
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "install-tools.d/podman.sh: podman, runc or slirp4netns is missing and apt-get as root is not available; install them, or the container test skips" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update </dev/null >/dev/null || { echo "install-tools.d/podman.sh: apt-get update failed" >&2; exit 1; }
apt-get -o DPkg::Lock::Timeout=600 install -y podman runc slirp4netns </dev/null >/dev/null ||
	{ echo "install-tools.d/podman.sh: cannot install podman, runc and slirp4netns" >&2; exit 1; }
