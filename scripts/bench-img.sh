#!/bin/bash
# make bench, host side: sequential throughput of a qcow2 image against a raw file on the same
# file system, once allocated (kestrel img bench: 1 MiB requests over a 1 GiB disk, page cache
# and O_DIRECT, best of 3). Issue 6 asks qcow2 to be within 10% of raw. A figure, not a test:
# tests/img/test_perf.sh checks only that the same workload is correct.
#
#   scripts/bench-img.sh BUILD      (prints a Markdown table, writes BUILD/bench/img.md)
set -u
BUILD=$(cd "${1:-build}" && pwd)
K=$BUILD/kestrel
OUT=$BUILD/bench
MIB=${KT_BENCH_IMG_MIB:-1024}
mkdir -p "$OUT"
# not /tmp: tmpfs has no O_DIRECT
T=$(mktemp -d "$OUT/img-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$K" img create -f qcow2 "$T/p.qcow2" "${MIB}M" >/dev/null
"$K" img create -f raw "$T/p.raw" "${MIB}M" >/dev/null
"$K" img bench -w -c "$MIB" "$T/p.qcow2" >/dev/null # allocate every cluster
"$K" img bench -w -c "$MIB" "$T/p.raw" >/dev/null
rate() { "$K" img bench "$@" 2>/dev/null | sed -n 's/.*: \([0-9.]*\) MB\/s/\1/p'; }
best() { # args...: best of three, NA if a run failed
	local b=NA r
	for _ in 1 2 3; do
		r=$(rate "$@")
		[ -z "$r" ] && continue
		b=$(awk -v r="$r" -v b="$b" 'BEGIN { print (b == "NA" || r > b) ? r : b }')
	done
	echo "$b"
}
{
	echo "## qcow2 vs raw on the host: kestrel img bench"
	echo
	echo "Sequential 1 MiB requests over a ${MIB} MiB disk, every cluster allocated (64 KiB clusters), same file system ($(df -T "$T" | awk 'NR == 2 { print $2 }')); best of 3; MB = 10^6 bytes."
	echo "Issue 6 asks qcow2 to be within 10% of raw (ratio 0.90 or more)."
	echo
	echo "| figure | qcow2 (MB/s) | raw (MB/s) | qcow2/raw |"
	echo "|---|---|---|---|"
	for mode in "read:" "write:-w" "read O_DIRECT:-t none" "write O_DIRECT:-w -t none"; do
		name=${mode%%:*} args=${mode#*:}
		# shellcheck disable=SC2086
		q=$(best $args -c "$MIB" "$T/p.qcow2")
		# shellcheck disable=SC2086
		r=$(best $args -c "$MIB" "$T/p.raw")
		ratio=NA
		[ "$q" != NA ] && [ "$r" != NA ] && ratio=$(awk -v q="$q" -v r="$r" 'BEGIN { printf "%.2f", q / r }')
		echo "| sequential $name | $q | $r | $ratio |"
	done
} >"$OUT/img.md"
cat "$OUT/img.md"
