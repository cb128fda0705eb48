#!/bin/bash
# Build the integration-test guest: Debian 12's stock kernel and a busybox initramfs.
#
#   scripts/make-guest.sh OUTDIR      (make guest/check/demo call it with build/guest)
#
# Produces
#   OUTDIR/vmlinuz             the Debian bzImage (linux-image-6.1.0-*-amd64)
#   OUTDIR/initramfs.cpio.gz   busybox-static, /init, the modules below, tests/guest/guest-scripts/
#   OUTDIR/modules/            the decompressed .ko files packed into the initramfs, and
#                              modules/order (insmod order, dependencies first)
#   OUTDIR/modules-kvm/        irqbypass, kvm, ccp, kvm-amd, kvm-intel, tun: the nested-KVM L1 guest
#                              (tests/nested/) loads them to get /dev/kvm
#   OUTDIR/VERSION             kernel and busybox package versions
#
# The .deb files are kept in ${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/debs, outside the build
# directory, so a second run (even after make clean) is offline. Nothing is redone when the
# outputs are newer than the inputs (the .debs, the guest scripts and this script).
# Facts about the kernel and its modules: shared/GUEST.md.
set -euo pipefail
# The body is one { } block, parsed whole before it runs: editing this file while a run is
# under way (a shared tree) cannot change what that run executes.
{

OUT=${1:?usage: make-guest.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kestrel/debs
SCRIPTS=$ROOT/tests/guest/guest-scripts

# Guest modules, each followed by what it needs (the resolver below adds anything a module's
# depends= names, so this list only has to name what /init wants loaded). crc32c_generic is a
# soft dependency of ext4/jbd2 (crypto API), invisible in depends=.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio
virtio_blk failover net_failover virtio_net virtio_console virtio-rng virtio_balloon
crc16 crc32c_generic libcrc32c mbcache jbd2 ext4 qemu_fw_cfg evdev button"
# The nested-KVM L1 guest's modules: KVM, and tun for the tap-backend test.
KVM_MODULES="irqbypass kvm ccp kvm-amd kvm-intel tun"

log() { echo "make-guest: $*"; }
die() {
	echo "make-guest: error: $*" >&2
	exit 1
}

mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)

# --- 1. the packages ------------------------------------------------------------------------
# Name of the versioned kernel package behind the linux-image-amd64 metapackage.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

# newest cached .deb of a package name (glob), or nothing
cached_deb() {
	ls -t "$CACHE"/$1_*.deb 2>/dev/null | head -n1 || true
}

fetch() { # package
	(cd "$CACHE" && apt-get download "$1" >/dev/null 2>&1) ||
		{ apt-get update -qq >/dev/null 2>&1 || true; (cd "$CACHE" && apt-get download "$1" >/dev/null); }
}

kpkg=$(kernel_pkg)
if [ -z "$kpkg" ]; then
	# no apt lists: use what the cache has (offline), else refresh the lists once
	kdeb=$(ls -t "$CACHE"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$kdeb" ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		kpkg=$(kernel_pkg)
		[ -n "$kpkg" ] || die "apt-cache depends linux-image-amd64 names no kernel package"
	fi
fi
if [ -n "$kpkg" ]; then
	kdeb=$(cached_deb "$kpkg")
	if [ -z "$kdeb" ]; then
		log "downloading $kpkg into $CACHE"
		fetch "$kpkg" || die "apt-get download $kpkg failed"
		kdeb=$(cached_deb "$kpkg")
	fi
fi
bdeb=$(cached_deb busybox-static)
if [ -z "$bdeb" ]; then
	log "downloading busybox-static into $CACHE"
	fetch busybox-static || die "apt-get download busybox-static failed"
	bdeb=$(cached_deb busybox-static)
fi
[ -f "$kdeb" ] && [ -f "$bdeb" ] || die "kernel or busybox .deb missing in $CACHE"

# --- 2. up to date? -------------------------------------------------------------------------
version="kernel $(basename "$kdeb" .deb) busybox $(basename "$bdeb" .deb)"
uptodate() {
	local f
	[ -f "$OUT/initramfs.cpio.gz" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/VERSION" ] ||
		return 1
	[ -f "$OUT/modules-kvm/kvm.ko" ] && [ -f "$OUT/modules-kvm/tun.ko" ] || return 1
	[ "$(cat "$OUT/VERSION")" = "$version" ] || return 1
	for f in "$kdeb" "$bdeb" "$0" "$SCRIPTS" "$SCRIPTS"/*; do
		[ "$f" -nt "$OUT/initramfs.cpio.gz" ] && return 1
	done
	return 0
}
if uptodate; then
	log "$OUT is up to date ($version)"
	exit 0
fi

# --- 3. unpack ------------------------------------------------------------------------------
work=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "unpacking $(basename "$kdeb") and $(basename "$bdeb")"
dpkg -x "$kdeb" "$work/k"
dpkg -x "$bdeb" "$work/b"
kver=$(ls "$work/k/lib/modules" | head -n1)
kdir=$work/k/lib/modules/$kver/kernel
[ -f "$work/k/boot/vmlinuz-$kver" ] || die "no boot/vmlinuz-$kver in $kdeb"
busybox=$work/b/bin/busybox
[ -x "$busybox" ] || die "no bin/busybox in $bdeb"

# --- 4. modules: find, resolve depends=, decompress -----------------------------------------
# Module names use - and _ interchangeably; files may be .ko, .ko.xz or .ko.zst.
find "$kdir" -name '*.ko*' >"$work/all-modules"
mod_file() { # name -> path or nothing
	local n1=${1//-/_} n2=${1//_/-}
	grep -E "/($n1|$n2)\.ko(\.xz|\.zst|\.gz)?\$" "$work/all-modules" | head -n1 || true
}
decompress() { # src dst
	case "$1" in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}
mod_depends() { # decompressed .ko -> its depends= names, space separated
	objcopy -O binary --only-section=.modinfo "$1" /dev/stdout 2>/dev/null | tr '\0' '\n' |
		sed -n 's/^depends=//p' | tr ',' ' '
}
# resolve DIR NAME: decompress NAME into DIR after its dependencies, append it to DIR/order
resolve() {
	local dir=$1 name=${2//-/_} src dep
	grep -qx "$name" "$dir/order" 2>/dev/null && return 0
	grep -qx "$name" "$dir/.visiting" 2>/dev/null && die "module dependency loop at $name"
	echo "$name" >>"$dir/.visiting"
	src=$(mod_file "$name")
	[ -n "$src" ] || die "module $name not found in $kver"
	decompress "$src" "$dir/$name.ko"
	for dep in $(mod_depends "$dir/$name.ko"); do
		resolve "$dir" "$dep"
	done
	echo "$name" >>"$dir/order"
}
mkdir -p "$work/modules" "$work/modules-kvm"
: >"$work/modules/order"
: >"$work/modules-kvm/order"
for m in $MODULES; do resolve "$work/modules" "$m"; done
for m in $KVM_MODULES; do resolve "$work/modules-kvm" "$m"; done
rm -f "$work/modules/.visiting" "$work/modules-kvm/.visiting"
log "$(wc -l <"$work/modules/order") guest modules: $(tr '\n' ' ' <"$work/modules/order")"

# --- 5. initramfs ---------------------------------------------------------------------------
rd=$work/rd
mkdir -p "$rd"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,lib/modules,tests}
cp "$busybox" "$rd/bin/busybox"
# Symlinks for every applet, so /init needs no --install step before its first line.
for a in $("$busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$rd/bin/$a"
done
cp "$work/modules/"*.ko "$work/modules/order" "$rd/lib/modules/"
cp "$SCRIPTS/init" "$rd/init"
chmod 755 "$rd/init"
for s in "$SCRIPTS"/*.sh; do
	[ -f "$s" ] && install -m 755 "$s" "$rd/tests/"
done
echo "$version" >"$rd/etc/kestrel-guest-version"
# The kernel opens /dev/console for init before /init can mount devtmpfs; /init copes if the
# node could not be made (not root), by mounting devtmpfs and reopening its output.
mknod -m 600 "$rd/dev/console" c 5 1 2>/dev/null || true
(cd "$rd" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -6 >"$work/initramfs.cpio.gz"

# --- 6. install outputs ---------------------------------------------------------------------
rm -rf "$OUT/modules" "$OUT/modules-kvm"
mv "$work/modules" "$OUT/modules"
mv "$work/modules-kvm" "$OUT/modules-kvm"
cp "$work/k/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$work/k/boot/config-$kver" "$OUT/config"
mv "$work/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
echo "$version" >"$OUT/VERSION"
log "built $OUT: vmlinuz ($kver), initramfs.cpio.gz ($(du -k "$OUT/initramfs.cpio.gz" | cut -f1) KiB)"
exit
}
