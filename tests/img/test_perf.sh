#!/bin/bash
# The workload of the qcow2-vs-raw benchmark (scripts/bench-img.sh, make bench), checked for
# correctness only: sequential 1 MiB writes and reads through kestrel img bench on a qcow2
# image and a raw file, page cache and O_DIRECT. Throughput is a figure, not a test: it is in
# make bench's output, never asserted here (the machine is shared).
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
# not /tmp (tmpfs has no O_DIRECT): the build directory's file system
T=$(mktemp -d "$KESTREL_BUILD/perf-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
$K img create -f qcow2 "$T/p.qcow2" 64M >/dev/null
$K img create -f raw "$T/p.raw" 64M >/dev/null
tap_check "bench -w fills the qcow2 image" bash -c "$K img bench -w -c 64 '$T/p.qcow2' | grep -q '^wrote 67108864 bytes'"
tap_check "bench -w fills the raw file" bash -c "$K img bench -w -c 64 '$T/p.raw' | grep -q '^wrote 67108864 bytes'"
tap_check "both read the same" $K img compare -q "$T/p.qcow2" "$T/p.raw"
tap_check "the qcow2 image is fully allocated (one data extent)" \
	bash -c "$K img map '$T/p.qcow2' | awk 'NR > 1' | wc -l | grep -qx 1"
for mode in "read:" "write:-w" "read O_DIRECT:-t none" "write O_DIRECT:-w -t none"; do
	name=${mode%%:*} args=${mode#*:}
	# shellcheck disable=SC2086
	tap_check "sequential $name runs on qcow2 and raw" \
		bash -c "$K img bench $args -c 64 '$T/p.qcow2' >/dev/null && $K img bench $args -c 64 '$T/p.raw' >/dev/null"
done
tap_check "after the O_DIRECT passes both still read the same" $K img compare -q "$T/p.qcow2" "$T/p.raw"
if command -v qemu-img >/dev/null; then
	tap_check "qemu-img check: clean" qemu-img check -q "$T/p.qcow2"
	tap_check "qemu-img compare: same content" qemu-img compare -q "$T/p.qcow2" "$T/p.raw"
fi
tap_done
