#!/bin/sh
# Install what building, testing and benchmarking Kestrel needs, from Debian's archive.
# Idempotent: only missing packages are installed, so a second run is quick and offline.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libjson-c-dev libcmocka-dev liburing-dev libslirp-dev libglib2.0-dev libseccomp-dev zlib1g-dev
libzstd-dev
nasm cpio xz-utils zstd e2fsprogs busybox-static
qemu-system-x86 qemu-utils python3 curl acpica-tools dmidecode"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# apt-get update is cheap compared with a failed install on a machine with stale lists.
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
