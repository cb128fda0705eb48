#!/bin/bash
# kestrel run --disk PATH,l2-cache-size=SIZE (QEMU's option: bytes of qcow2 L2 tables to
# cache, K/M/G suffixes): a bad value is one clear line and exit 1; a good one is accepted.
# That the value reaches the qcow2 driver is unit-tested (test_qcow2 l2_cache_size_option).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/cli.sh"
K=${KESTREL:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$K" img create -f qcow2 "$T/d.qcow2" 1G >/dev/null

for v in abc 0 -1 5G 1X ""; do
	expect_error "l2-cache-size='$v' is refused" "l2-cache-size=$v is not a size from 1 to 4G" \
		run --accel qtest --disk "$T/d.qcow2,l2-cache-size=$v"
done
expect_error "an unknown --disk key names l2-cache-size among the keys" \
	"unknown option 'l2-cache'.*l2-cache-size" run --accel qtest --disk "$T/d.qcow2,l2-cache=1M"

# a good value: the VM comes up (qtest accelerator: no CPU, no kernel) and stays up
for v in 4M 65536 1G; do
	$K run --accel qtest --disk "$T/d.qcow2,l2-cache-size=$v" >"$T/out" 2>"$T/err" </dev/null &
	pid=$!
	sleep 1
	if kill -0 $pid 2>/dev/null; then
		tap_ok "l2-cache-size=$v is accepted"
		kill $pid
	else
		tap_fail "l2-cache-size=$v: exited: $(head -c 300 "$T/err")"
	fi
	wait $pid 2>/dev/null
done
tap_done
