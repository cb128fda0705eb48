#!/bin/bash
# make bench: boot time and peak memory of Kestrel against QEMU on the same guest.
#
#   scripts/bench.sh BUILD        (make bench: after make and scripts/make-guest.sh BUILD/guest)
#
# Each VMM boots the test guest (BUILD/guest: Debian kernel + busybox initramfs, 512 MiB, 1 vCPU)
# until its /init prints KESTREL-INIT-START: Kestrel, QEMU -M microvm and QEMU -M pc, all with
# KVM, interleaved, 5 runs each (KT_BENCH_RUNS). Where this host has no usable /dev/kvm, all runs
# happen in one nested L1 guest (tests/nested/), whose TCG-emulated CPU makes every figure far
# slower than on real hardware: compare the columns with each other, not with other machines.
# Prints a Markdown table and writes it to BUILD/bench/boot.md.
set -u
# The body is one { } block, parsed whole before it runs: editing this file while a run is
# under way (a shared tree) cannot change what that run executes.
{
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
OUT=$BUILD/bench
mkdir -p "$OUT"
export KESTREL_BUILD=$BUILD KESTREL=$BUILD/kestrel
export KT_BENCH_RUNS=${KT_BENCH_RUNS:-5}
export KT_PASS_ENV="KT_BENCH_RUNS KT_BENCH_VMMS"
# one L1 boot holds every run: allow each of them its full per-boot time limit
export KT_L1_LIMIT=${KT_L1_LIMIT:-$((300 + KT_BENCH_RUNS * 3 * ${KT_TIMEOUT:-180}))}

raw=$OUT/boot-raw.txt
echo "bench: $KT_BENCH_RUNS interleaved boots per VMM; this takes a few minutes" >&2
"$ROOT/tests/nested/run-cases.sh" -n bench "$ROOT/tests/guest/bench/boot_bench.sh" | tee "$raw" |
	grep -E '^(BENCH|#|not ok)' >&2

where=natively
grep -q 'nested L1' "$raw" && where="in a nested L1 guest (QEMU TCG, EPYC+SVM; L2 under nested KVM)"

# median and min/max of the numeric values of field 4 or 5 for one VMM
stats() { # vmm field
	awk -v v="$1" -v f="$2" '$1 == "BENCH" && $2 == v && $f != "NA" { print $f }' "$raw" |
		sort -n | awk '{ a[NR] = $1 } END {
			if (NR == 0) { print "NA NA NA 0"; exit }
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			print m, a[1], a[NR], NR }'
}

read -r k_med _ _ _ < <(stats kestrel 4)
{
	echo "## Boot to guest /init: Kestrel vs QEMU"
	echo
	echo "Guest: $(cat "$BUILD/guest/VERSION" 2>/dev/null); 512 MiB, 1 vCPU, KVM; measured $where."
	echo "Time from VMM process start to the guest's KESTREL-INIT-START line; median of $KT_BENCH_RUNS interleaved runs."
	echo
	echo "| VMM | boot to init, median (s) | min (s) | max (s) | runs ok | peak RSS, median (MiB) | time vs Kestrel |"
	echo "|---|---|---|---|---|---|---|"
	for vmm in kestrel qemu-microvm qemu-pc; do
		read -r med lo hi n < <(stats $vmm 4)
		read -r rss _ _ _ < <(stats $vmm 5)
		[ "$rss" != NA ] && rss=$(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')
		ratio=NA
		if [ "$med" != NA ] && [ "$k_med" != NA ]; then
			ratio=$(awk -v a="$med" -v k="$k_med" 'BEGIN { printf "%.2fx", a / k }')
		fi
		echo "| $vmm | $med | $lo | $hi | $n/$KT_BENCH_RUNS | $rss | $ratio |"
	done
	if [ "$k_med" = NA ]; then
		echo
		echo "Kestrel did not reach the guest's /init in any run (see $raw)."
	fi
} >"$OUT/boot.md"
cat "$OUT/boot.md"
exit
}
