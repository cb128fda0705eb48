#!/bin/bash
# make bench: Kestrel against QEMU on the same guest, in the same run.
#
#   scripts/bench.sh BUILD        (make bench: after make and scripts/make-guest.sh BUILD/guest)
#
# Three parts (KT_BENCH_PARTS="boot blk net" by default; any subset is fine), in one nested L1 boot
# where this host has no usable /dev/kvm (tests/nested/), natively where it has:
#  boot  the test guest (BUILD/guest: Debian kernel + busybox initramfs, 512 MiB, 1 vCPU) boots
#        until its /init prints KESTREL-INIT-START: Kestrel, QEMU -M microvm and QEMU -M pc, all
#        with KVM, interleaved, 5 runs each (KT_BENCH_RUNS); time and peak RSS
#        (tests/guest/bench/boot_bench.sh).
#  blk   virtio-blk throughput on the same raw file: sequential 4 KiB and 1 MiB O_DIRECT writes
#        and reads (busybox dd) and 4 KiB random-read IOPS at queue depth 1 and 8, Kestrel
#        against QEMU -M pc (tests/guest/bench/blk_bench.sh; KT_BENCH_BLK_* there).
#  net   TCP throughput over user networking (libslirp) with a virtio-net NIC: the guest fetches
#        N MiB from an httpd on the host (10.0.2.2), the host fetches N MiB from the guest's
#        httpd through a hostfwd port, both md5-checked; Kestrel against QEMU -M pc
#        (tests/guest/bench/net_bench.sh; KT_BENCH_NET_RUNS, _VMMS, _MIB there).
# In L1 the CPU is emulated by TCG, which makes every figure far slower than on real hardware
# (every VM exit is expensive): compare the columns with each other, not with other machines.
# Prints Markdown tables and writes them to BUILD/bench/boot.md, blk.md and net.md.
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
PARTS=${KT_BENCH_PARTS:-boot blk net}
export KT_BENCH_RUNS=${KT_BENCH_RUNS:-5}
export KT_BENCH_BLK_RUNS=${KT_BENCH_BLK_RUNS:-1} KT_BENCH_BLK_SECS=${KT_BENCH_BLK_SECS:-3}
export KT_BENCH_NET_RUNS=${KT_BENCH_NET_RUNS:-3} KT_BENCH_NET_MIB=${KT_BENCH_NET_MIB:-16}
export KT_PASS_ENV="KT_BENCH_RUNS KT_BENCH_VMMS KT_BENCH_BLK_RUNS KT_BENCH_BLK_VMMS KT_BENCH_BLK_SECS KT_BENCH_BLK_MIB KT_BENCH_NET_RUNS KT_BENCH_NET_VMMS KT_BENCH_NET_MIB"
export KT_BENCH_BLK_VMMS=${KT_BENCH_BLK_VMMS:-kestrel kestrel-sync qemu kestrel-qcow2 qemu-qcow2}
blk_all=$KT_BENCH_BLK_VMMS
# the raw-file table and the qcow2 table
blk_vmms=$(for v in $blk_all; do case $v in *-qcow2) ;; *) echo "$v" ;; esac; done | tr '\n' ' ')
qcow2_vmms=$(for v in $blk_all; do case $v in *-qcow2) echo "$v" ;; esac; done | tr '\n' ' ')
nblk=$(echo "$blk_all" | wc -w)
net_vmms=${KT_BENCH_NET_VMMS:-kestrel qemu}
nnet=$(echo "$net_vmms" | wc -w)

cases=() limit=300
for p in $PARTS; do
	case $p in
	boot)
		cases+=("$ROOT/tests/guest/bench/boot_bench.sh")
		limit=$((limit + KT_BENCH_RUNS * 3 * ${KT_TIMEOUT:-180}))
		;;
	blk)
		cases+=("$ROOT/tests/guest/bench/blk_bench.sh")
		limit=$((limit + KT_BENCH_BLK_RUNS * nblk * (${KT_TIMEOUT:-180} + 20 * KT_BENCH_BLK_SECS + 120)))
		;;
	net)
		cases+=("$ROOT/tests/guest/bench/net_bench.sh")
		# per boot: net_bench.sh's own VM limit (KT_TIMEOUT + 120 + 4 s per MiB)
		limit=$((limit + KT_BENCH_NET_RUNS * nnet * (${KT_TIMEOUT:-180} + 120 + 4 * KT_BENCH_NET_MIB)))
		;;
	*) echo "bench: unknown part '$p' in KT_BENCH_PARTS (boot, blk, net)" >&2; exit 2 ;;
	esac
done
# one L1 boot holds every run: allow each of them its full per-boot time limit
export KT_L1_LIMIT=${KT_L1_LIMIT:-$limit}

raw=$OUT/bench-raw.txt
what=""
case " $PARTS " in *" boot "*) what="$what boot: $KT_BENCH_RUNS interleaved boots per VMM;" ;; esac
case " $PARTS " in *" net "*) what="$what net: $KT_BENCH_NET_RUNS round(s) of $KT_BENCH_NET_MIB MiB each way per VMM;" ;; esac
what=${what# }
what=${what%;}
echo "bench: $PARTS; this takes a few minutes${what:+ ($what)}" >&2
"$ROOT/tests/nested/run-cases.sh" -n bench "${cases[@]}" | tee "$raw" |
	grep -E '^(BENCH|BLKBENCH|BLKCACHE|NETBENCH|#|not ok)' >&2
# the boot part's figures also went to boot-raw.txt before both parts shared a run
grep -Ev '^(BLK|NET)' "$raw" >"$OUT/boot-raw.txt"

where=natively
grep -q 'nested L1' "$raw" && where="in a nested L1 guest (QEMU TCG, EPYC+SVM; L2 under nested KVM)"
guest=$(cat "$BUILD/guest/VERSION" 2>/dev/null)

# median and min/max of the numeric values of field F of the TAG lines for one VMM
stats() { # tag vmm field [figure]
	awk -v t="$1" -v v="$2" -v f="$3" -v fig="${4:-}" \
		'$1 == t && $2 == v && (fig == "" || $4 == fig) && $f != "NA" { print $f }' "$raw" |
		sort -n | awk '{ a[NR] = $1 } END {
			if (NR == 0) { print "NA NA NA 0"; exit }
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			print m, a[1], a[NR], NR }'
}

ratio() { # value reference
	if [ "$1" != NA ] && [ "$2" != NA ] && awk -v r="$2" 'BEGIN { exit !(r > 0) }'; then
		awk -v a="$1" -v k="$2" 'BEGIN { printf "%.2fx", a / k }'
	else
		echo NA
	fi
}

tables=()
case " $PARTS " in
*" boot "*)
	read -r k_med _ _ _ < <(stats BENCH kestrel 4)
	{
		echo "## Boot to guest /init: Kestrel vs QEMU"
		echo
		echo "Guest: $guest; 512 MiB, 1 vCPU, KVM; measured $where."
		echo "Time from VMM process start to the guest's KESTREL-INIT-START line; median of $KT_BENCH_RUNS interleaved runs."
		echo
		echo "| VMM | boot to init, median (s) | min (s) | max (s) | runs ok | peak RSS, median (MiB) | time vs Kestrel |"
		echo "|---|---|---|---|---|---|---|"
		for vmm in kestrel qemu-microvm qemu-pc; do
			read -r med lo hi n < <(stats BENCH $vmm 4)
			read -r rss _ _ _ < <(stats BENCH $vmm 5)
			[ "$rss" != NA ] && rss=$(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')
			echo "| $vmm | $med | $lo | $hi | $n/$KT_BENCH_RUNS | $rss | $(ratio "$med" "$k_med") |"
		done
		if [ "$k_med" = NA ]; then
			echo
			echo "Kestrel did not reach the guest's /init in any run (see $raw)."
		fi
	} >"$OUT/boot.md"
	tables+=("$OUT/boot.md")
	;;
esac

case " $PARTS " in
*" blk "*)
	cache=$(awk '$1 == "BLKCACHE" { $1 = ""; sub(/^ /, ""); print; exit }' "$raw")
	{
		echo "## virtio-blk throughput: Kestrel vs QEMU, same raw file"
		echo
		echo "Guest: $guest; 512 MiB, 1 vCPU, KVM; measured $where."
		legend=""
		for vmm in $blk_vmms; do
			case $vmm in
			kestrel) legend="$legend kestrel: io_uring;" ;;
			kestrel-sync) legend="$legend kestrel-sync: --disk ...,aio=sync;" ;;
			qemu) legend="$legend qemu: -drive if=virtio,format=raw (aio=threads);" ;;
			qemu-uring) legend="$legend qemu-uring: the same with aio=io_uring;" ;;
			esac
		done
		echo "Host cache: ${cache:-unknown}.${legend%;}."
		echo "Guest side: busybox dd with iflag/oflag=direct on /dev/vda, passes of 1 MiB (4 KiB blocks) or 8 MiB (1 MiB blocks) for ${KT_BENCH_BLK_SECS} s;"
		echo "random reads: 4 KiB O_DIRECT preads at random offsets by 1 or 8 threads for ${KT_BENCH_BLK_SECS} s (tests/guest/bench/blkrand.c)."
		echo "Median of $KT_BENCH_BLK_RUNS interleaved round(s); MB = 10^6 bytes; higher is better; kestrel/X above 1 means Kestrel is faster."
		echo
		hdr="| figure |" sep="|---|"
		for vmm in $blk_vmms; do
			hdr="$hdr $vmm |"
			sep="$sep---|"
		done
		for vmm in $blk_vmms; do
			[ "$vmm" = kestrel ] || { hdr="$hdr kestrel/$vmm |"; sep="$sep---|"; }
		done
		echo "$hdr"
		echo "$sep"
		for fig in seq-write-4k seq-write-1m seq-read-4k seq-read-1m rand-read-4k-qd1 rand-read-4k-qd8; do
			unit="MB/s"
			case $fig in rand*) unit=IOPS ;; esac
			row="| $fig ($unit) |"
			read -r kv _ _ _ < <(stats BLKBENCH kestrel 5 "$fig")
			ratios=""
			for vmm in $blk_vmms; do
				read -r v _ _ _ < <(stats BLKBENCH "$vmm" 5 "$fig")
				row="$row $v |"
				[ "$vmm" = kestrel ] || ratios="$ratios $(ratio "$kv" "$v") |"
			done
			echo "$row$ratios"
		done
		if ! grep -q '^BLKBENCH kestrel ' "$raw"; then
			echo
			echo "No Kestrel figures (see $raw and $BUILD/nested/bench/out/blk_bench/)."
		fi
	} >"$OUT/blk.md"
	tables+=("$OUT/blk.md")
	if [ -n "$qcow2_vmms" ]; then
		{
			echo "## virtio-blk on qcow2: Kestrel vs QEMU, and qcow2 vs raw"
			echo
			echo "The same guest measurements on a fully allocated qcow2 image of the same size (64 KiB clusters), host cache as above."
			echo "kestrel-qcow2: --disk ...,format=qcow2; qemu-qcow2: -drive if=virtio,format=qcow2; kestrel (raw): the raw column of the table above."
			echo "Median of $KT_BENCH_BLK_RUNS interleaved round(s); higher is better."
			echo
			echo "| figure | kestrel-qcow2 | qemu-qcow2 | kestrel (raw) | kestrel-qcow2/qemu-qcow2 | kestrel-qcow2/kestrel-raw |"
			echo "|---|---|---|---|---|---|"
			for fig in seq-write-4k seq-write-1m seq-read-4k seq-read-1m rand-read-4k-qd1 rand-read-4k-qd8; do
				unit="MB/s"
				case $fig in rand*) unit=IOPS ;; esac
				read -r kq _ _ _ < <(stats BLKBENCH kestrel-qcow2 5 "$fig")
				read -r qq _ _ _ < <(stats BLKBENCH qemu-qcow2 5 "$fig")
				read -r kr _ _ _ < <(stats BLKBENCH kestrel 5 "$fig")
				echo "| $fig ($unit) | $kq | $qq | $kr | $(ratio "$kq" "$qq") | $(ratio "$kq" "$kr") |"
			done
		} >"$OUT/blk-qcow2.md"
		tables+=("$OUT/blk-qcow2.md")
	fi
	;;
esac

case " $PARTS " in
*" net "*)
	{
		echo "## TCP over user networking (libslirp): Kestrel vs QEMU"
		echo
		echo "Guest: $guest; 512 MiB, 1 vCPU, KVM, virtio-net; measured $where."
		legend=""
		for vmm in $net_vmms; do
			case $vmm in
			kestrel) legend="$legend kestrel: --net user,hostfwd=tcp::P-:80;" ;;
			qemu) legend="$legend qemu: -M pc -netdev user,hostfwd=tcp::P-:80 -device virtio-net-pci;" ;;
			esac
		done
		echo "Backends:${legend%;}."
		echo "host-to-guest: the guest fetches $KT_BENCH_NET_MIB MiB of random data over HTTP from a busybox httpd on the host (10.0.2.2) with busybox nc, timed in the guest;"
		echo "guest-to-host: the host fetches $KT_BENCH_NET_MIB MiB from the guest's busybox httpd through the hostfwd port, timed on the host; each body md5-checked (tests/guest/bench/net_bench.sh)."
		echo "Median of $KT_BENCH_NET_RUNS interleaved round(s); MB = 10^6 bytes; higher is better; kestrel/X above 1 means Kestrel is faster."
		echo
		hdr="| figure |" sep="|---|"
		for vmm in $net_vmms; do
			hdr="$hdr $vmm |"
			sep="$sep---|"
		done
		for vmm in $net_vmms; do
			[ "$vmm" = kestrel ] || { hdr="$hdr kestrel/$vmm |"; sep="$sep---|"; }
		done
		echo "$hdr"
		echo "$sep"
		bad=""
		for fig in host-to-guest guest-to-host; do
			row="| $fig (MB/s) |"
			read -r kv _ _ _ < <(stats NETBENCH kestrel 5 "$fig")
			ratios=""
			for vmm in $net_vmms; do
				read -r v _ _ n < <(stats NETBENCH "$vmm" 5 "$fig")
				[ "$v" != NA ] && v=$(awk -v x="$v" 'BEGIN { printf "%.2f", x }')
				row="$row $v |"
				[ "$vmm" = kestrel ] || ratios="$ratios $(ratio "$kv" "$v") |"
				[ "$n" -lt "$KT_BENCH_NET_RUNS" ] && bad="$bad $vmm $fig: $n of $KT_BENCH_NET_RUNS transfers whole;"
			done
			echo "$row$ratios"
		done
		if [ -n "$bad" ]; then
			echo
			echo "Broken or missing transfers (not counted):${bad%;} (see $raw and $BUILD/nested/bench/out/net_bench/)."
		fi
	} >"$OUT/net.md"
	tables+=("$OUT/net.md")
	;;
esac
for t in "${tables[@]}"; do
	cat "$t"
	echo
done
exit
}
