#!/bin/bash
# Sequential throughput of qcow2 against raw on the same file system, once allocated
# (kestrel img bench, 1 MiB requests over a 1 GiB disk), page cache and O_DIRECT. Figures
# are printed as comments; the check is loose (qcow2 at least half of raw, best of three)
# because the machine is shared. Runs with KESTREL_LONG=1 (make check-long) only.
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
if [ -z "${KESTREL_LONG:-}" ]; then
	tap_skip "qcow2 vs raw throughput" "long test, run with make check-long"
	tap_done
fi
T=$(mktemp -d /tmp/kestrel-perf.XXXXXX)
trap 'rm -rf "$T"' EXIT
$K img create -f qcow2 "$T/p.qcow2" 1G >/dev/null
$K img create -f raw "$T/p.raw" 1G >/dev/null
$K img bench -w -c 1024 "$T/p.qcow2" >/dev/null   # allocate every cluster
$K img bench -w -c 1024 "$T/p.raw" >/dev/null
rate() { "$K" img bench "$@" | sed 's/.*: \([0-9.]*\) MB\/s/\1/'; }
best() { # args... : best of three
	local b=0 r
	for _ in 1 2 3; do
		r=$(rate "$@")
		b=$(awk "BEGIN { print ($r > $b) ? $r : $b }")
	done
	echo "$b"
}
for mode in "read:" "write:-w" "read-direct:-t none" "write-direct:-w -t none"; do
	name=${mode%%:*} args=${mode#*:}
	# shellcheck disable=SC2086
	q=$(best $args -c 1024 "$T/p.qcow2")
	# shellcheck disable=SC2086
	r=$(best $args -c 1024 "$T/p.raw")
	echo "# sequential $name: qcow2 $q MB/s, raw $r MB/s"
	tap_check "sequential $name: qcow2 ($q MB/s) at least half of raw ($r MB/s)" \
		awk "BEGIN { exit !($q >= 0.5 * $r) }"
done
tap_done
