#!/bin/bash
# Image locking, compatible with QEMU's (OFD byte-range locks, block/raw.c): kestrel img
# refuses to touch an image a running qemu (qemu-io) or kestrel holds in a conflicting way,
# qemu refuses one kestrel holds, and -U / --force-share reads an image in use anyway
# (info, check, map, compare, convert), as qemu-img.
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
	tap_skip "image locking" "qemu-img/qemu-io not installed (scripts/deps.sh installs qemu-utils)"
	tap_done
fi
T=$(mktemp -d /tmp/kestrel-lock.XXXXXX)
holder=
cleanup() { [ -n "$holder" ] && kill "$holder" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cp "$KESTREL" "$T/kestrel" && K=$T/kestrel
cd "$T" || exit 1

$K img create -f qcow2 img.qcow2 4M >/dev/null
qemu-io -c 'write -P 7 0 64k' img.qcow2 >/dev/null
# refused CMD... MESSAGE: exit code 1 and MESSAGE on stderr
refused() {
	local msg=${*: -1}
	"${@:1:$#-1}" >out 2>err
	local rc=$?
	[ $rc -ne 0 ] && grep -q -- "$msg" err || { echo "# rc=$rc: $(head -c 300 err)"; return 1; }
}
quiet() { "$@" >/dev/null 2>&1; }
# hold CMD...: runs CMD in the background until release; waits for its locks to show
hold() {
	"$@" >/dev/null 2>&1 </dev/null &
	holder=$!
	for _ in $(seq 50); do
		grep -q ":$(stat -c %i img.qcow2) " /proc/locks && return 0
		sleep 0.1
	done
	return 1
}
release() { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=; }

# 1. qemu holds the image read-write (qemu-io sleeping in a command)
hold qemu-io -c 'sleep 20000' img.qcow2
WL='failed to get "write" lock'
SWL='failed to get shared "write" lock'
tap_check "qemu-io holds it: kestrel img resize is refused" refused $K img resize img.qcow2 8M "$WL"
tap_check "qemu-io holds it: kestrel img snapshot -c is refused" refused $K img snapshot -c s img.qcow2 "$WL"
tap_check "qemu-io holds it: kestrel img create over it is refused, the image intact" \
	bash -c "! $K img create -f qcow2 img.qcow2 1M >/dev/null 2>&1 && qemu-img info -U img.qcow2 | grep -q '(4194304 bytes)'"
tap_check "qemu-io holds it: kestrel img info is refused (as qemu-img info)" refused $K img info img.qcow2 "$SWL"
tap_check "qemu-io holds it: kestrel img info -U reads it" quiet $K img info -U img.qcow2
tap_check "qemu-io holds it: kestrel img info --force-share reads it" quiet $K img info --force-share img.qcow2
tap_check "qemu-io holds it: kestrel img check -U reads it" quiet $K img check -U img.qcow2
tap_check "qemu-io holds it: kestrel img check -U -r all is refused" refused $K img check -U -r all img.qcow2 "cannot be used with -r"
tap_check "qemu-io holds it: kestrel img map -U reads it" quiet $K img map -U img.qcow2
tap_check "qemu-io holds it: kestrel img convert -U copies it" \
	bash -c "$K img convert -U -O raw img.qcow2 copy.raw && $K img compare -U img.qcow2 copy.raw >/dev/null"
tap_check "qemu-io holds it: kestrel img compare without -U is refused" refused $K img compare img.qcow2 copy.raw "$SWL"
release

# 2. qemu holds it read-only: readers share it, writers are refused
hold qemu-io -r -c 'sleep 20000' img.qcow2
tap_check "qemu-io -r holds it: kestrel img info reads it" quiet $K img info img.qcow2
tap_check "qemu-io -r holds it: kestrel img resize is refused" refused $K img resize img.qcow2 8M "$WL"
release

# 3. kestrel holds it (a VM with the image as a disk; qtest: no CPU, no kernel)
hold $K run --accel qtest --disk img.qcow2
tap_check "kestrel run holds it: qemu-img info is refused" refused qemu-img info img.qcow2 'Failed to get shared "write" lock'
tap_check "kestrel run holds it: qemu-img info -U reads it" quiet qemu-img info -U img.qcow2
tap_check "kestrel run holds it: qemu-io cannot write it" refused qemu-io -c 'write 0 4k' img.qcow2 'Failed to get "write" lock'
tap_check "kestrel run holds it: kestrel img commit/rebase/resize are refused" refused $K img resize img.qcow2 8M "$WL"
tap_check "kestrel run holds it: a second kestrel run cannot use it" \
	refused timeout 10 $K run --accel qtest --disk img.qcow2 "$WL"
release
hold $K run --accel qtest --disk img.qcow2,readonly=on
tap_check "kestrel run holds it read-only: qemu-img info reads it" quiet qemu-img info img.qcow2
tap_check "kestrel run holds it read-only: qemu-io cannot write it" refused qemu-io -c 'write 0 4k' img.qcow2 'Failed to get "write" lock'
release

# 4. released: everything works again
tap_check "released: kestrel img resize works" quiet $K img resize img.qcow2 8M
tap_check "released: qemu-io writes it" quiet qemu-io -c 'write -P 9 64k 4k' img.qcow2
tap_check "two kestrel readers at once" bash -c "$K img info img.qcow2 >/dev/null && $K img compare img.qcow2 img.qcow2 >/dev/null"
tap_done
