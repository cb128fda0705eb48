#!/bin/bash
# --mem-merge: guest RAM is offered to KSM (MADV_MERGEABLE, the "mg" VmFlag in
# /proc/PID/smaps) by default, as QEMU's mem-merge=on, and not with --mem-merge off.
# Runs the pc machine with --accel qtest (no CPU, no KVM needed).
. "$(dirname "$0")/../lib/tap.sh"
K=${KESTREL:?}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT

# ram_flags ARGS...: the VmFlags of the 96 MiB guest RAM mapping of a qtest VM
ram_flags() {
	"$K" run --accel qtest --qtest "unix:$dir/qt.sock" --console none --mem 96M "$@" \
		>"$dir/log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		[ -S "$dir/qt.sock" ] && break
		sleep 0.05
	done
	# the mapping whose size is exactly 96 MiB = 98304 kB
	awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0 } /^Size:/ { size = $2 }
	     /^VmFlags:/ && size == 98304 { print; exit }' "/proc/$pid/smaps"
	kill $pid
	wait $pid 2>/dev/null
	rm -f "$dir/qt.sock"
}

flags=$(ram_flags)
if [ -z "$flags" ]; then
	tap_fail "guest RAM mapping found in /proc/PID/smaps ($(head -c 200 "$dir/log"))"
elif [ ! -e /sys/kernel/mm/ksm ]; then
	tap_skip "guest RAM is mergeable by default" "this kernel has no KSM (/sys/kernel/mm/ksm)"
else
	tap_check "guest RAM is mergeable by default (VmFlags: $flags)" grep -qw mg <<<"$flags"
fi
flags=$(ram_flags --mem-merge off)
tap_check "--mem-merge off: not mergeable (VmFlags: $flags)" \
	bash -c '[ -n "$1" ] && ! grep -qw mg <<<"$1"' _ "$flags"
out=$("$K" run --accel qtest --mem-merge maybe 2>&1)
rc=$?
tap_check "--mem-merge maybe: exit 1 with one clear line" \
	bash -c '[ "$1" = 1 ] && [ "$(wc -l <<<"$2")" = 1 ] && grep -q "mem-merge" <<<"$2"' _ "$rc" "$out"
tap_done
