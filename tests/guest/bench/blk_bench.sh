#!/bin/sh
# kt-limit: 1800
# Block benchmark, run by scripts/bench.sh through tests/nested/run-cases.sh (natively where
# /dev/kvm works, else inside the nested L1 guest, in the same L1 boot as the boot benchmark).
# Not a test: it prints
#   BLKCACHE <cache mode> <why>
#   BLKBENCH <vmm> <run> <figure> <MB/s or IOPS>
# and one "ok" line when it finished.
#
# Each VMM boots the test guest (512 MiB, 1 vCPU, KVM) with the same raw file as a virtio-blk
# disk (vda) and the blkrand helper on a second, read-only one (vdb); the guest script
# (tests/guest/guest-scripts/bench_blk.sh) measures sequential 4 KiB / 1 MiB writes and reads
# with O_DIRECT and 4 KiB random reads at queue depth 1 and 8. Kestrel: --disk ...,format=raw;
# QEMU: -drive if=virtio,format=raw with its default aio (threads). Both with cache=none where
# the host file system has O_DIRECT; L1's /tmp is a tmpfs, which has none before Linux 6.6, and
# there both use the host page cache (cache=writeback), which the BLKCACHE line says.
# KT_BENCH_BLK_VMMS picks the VMMs (default "kestrel kestrel-sync qemu kestrel-qcow2 qemu-qcow2":
# kestrel-sync is Kestrel with aio=sync, the synchronous path, to show what io_uring brings;
# the -qcow2 ones read and write a fully allocated qcow2 image instead of the raw file;
# "qemu-uring" is QEMU with aio=io_uring), KT_BENCH_BLK_RUNS the interleaved rounds (default 1), KT_BENCH_BLK_SECS the
# seconds per figure (default 3), KT_BENCH_BLK_MIB the disk size (default 128).
# kt-needs: qemu
. "$KT_LIB"
ART=$KT_ART/blkbench
case "$1" in
setup)
	rm -rf "$ART"
	mkdir -p "$ART"
	if ! gcc -O2 -static -pthread -o "$ART/blkrand" "$KT_ROOT/tests/guest/bench/blkrand.c" \
		>"$ART/gcc.log" 2>&1; then
		rm -f "$ART/blkrand"
	fi
	exit 0
	;;
run) ;;
*) exit 0 ;;
esac

RUNS=${KT_BENCH_BLK_RUNS:-1}
VMMS=${KT_BENCH_BLK_VMMS:-kestrel kestrel-sync qemu kestrel-qcow2 qemu-qcow2}
SECS=${KT_BENCH_BLK_SECS:-3}
MIB=${KT_BENCH_BLK_MIB:-128}
W=/tmp/kt-blkbench
rm -rf "$W"
mkdir -p "$W"
disk=$W/disk.raw
tools=$W/tools.raw

# The disk is written through once, so no VMM reads holes the other has filled.
dd if=/dev/zero of="$disk" bs=1048576 count="$MIB" 2>/dev/null
# The qcow2 runs (kestrel-qcow2, qemu-qcow2) use an image of the same size with every cluster
# allocated (made from non-zero data: convert leaves zeros out), so they measure the format's
# data path, not cluster allocation.
qdisk=$W/disk.qcow2
case " $VMMS " in
*-qcow2*)
	tr '\000' '\001' </dev/zero | head -c $((MIB * 1048576)) >"$W/ones.raw"
	"$KESTREL" img convert -O qcow2 "$W/ones.raw" "$qdisk"
	rm -f "$W/ones.raw"
	;;
esac
if dd if=/dev/zero of="$W/probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
	cache=none
	echo "BLKCACHE none O_DIRECT on the host file"
else
	cache=writeback
	fs=$(awk '$2 == "/tmp" { print $3 }' /proc/mounts | tail -n 1)
	echo "BLKCACHE writeback /tmp (${fs:-?}) has no O_DIRECT here"
fi
rm -f "$W/probe"
toolsize=
if [ -f "$ART/blkrand" ]; then
	toolsize=$(wc -c <"$ART/blkrand")
	cp "$ART/blkrand" "$tools"
	# a whole number of sectors
	truncate -s $(((toolsize + 511) / 512 * 512)) "$tools"
else
	echo "# blkrand was not built on the host: no random-read figures ($(head -c 200 "$ART/gcc.log" 2>/dev/null))"
	truncate -s 512 "$tools"
fi

CMDLINE="console=ttyS0 kestrel.test=bench_blk kt.blk_secs=$SECS${toolsize:+ kt.blkrand=$toolsize}"
G="--kernel $KT_GUEST/vmlinuz --initrd $KT_GUEST/initramfs.cpio.gz --mem 512M --cpus 1"
QEMU_COMMON="-accel kvm -M pc -m 512 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot"
# boot + six figures of $SECS (a slow pass may overrun) + the helper's copy
limit=$KT_TIMEOUT
KT_TIMEOUT=$((limit + 20 * SECS + 120))

i=1
while [ $i -le "$RUNS" ]; do
	for vmm in $VMMS; do
		log=$KT_OUT/blk-$vmm-$i.log
		tok=$(kt_token)
		case $vmm in
		kestrel | kestrel-sync | kestrel-qcow2)
			d="$disk,format=raw,cache=$cache,aio=io_uring"
			[ "$vmm" = kestrel-sync ] && d="$disk,format=raw,cache=$cache,aio=sync"
			[ "$vmm" = kestrel-qcow2 ] && d="$qdisk,format=qcow2,cache=$cache"
			# shellcheck disable=SC2086
			kt_vm "$log" kestrel run $G --console stdio --no-reboot -v --disk "$d" \
				--disk "$tools,format=raw,readonly=on" --cmdline "$CMDLINE $tok"
			;;
		qemu | qemu-uring | qemu-qcow2)
			d="file=$disk,if=virtio,format=raw,cache=$cache"
			[ "$vmm" = qemu-uring ] && d="$d,aio=io_uring"
			[ "$vmm" = qemu-qcow2 ] && d="file=$qdisk,if=virtio,format=qcow2,cache=$cache"
			# shellcheck disable=SC2086
			kt_vm "$log" qemu $QEMU_COMMON -kernel "$KT_GUEST/vmlinuz" \
				-initrd "$KT_GUEST/initramfs.cpio.gz" -append "$CMDLINE $tok" \
				-drive "$d" -drive "file=$tools,if=virtio,format=raw,readonly=on"
			;;
		*)
			echo "# unknown VMM '$vmm' in KT_BENCH_BLK_VMMS"
			continue
			;;
		esac
		if ! grep -q "KT bench-blk-done" "$log"; then
			echo "# $vmm run $i: the guest did not finish (exit status $KT_RC after ${KT_SECS}s)"
			tail -n 5 "$log" | kt_diag
			head -n 3 "$log.err" | kt_diag
		fi
		grep "^KT-BLK-ERR" "$log" | kt_diag
		case $vmm in kestrel*) grep "I/O\|requests" "$log.err" | kt_diag ;; esac
		# KT-BLK name amount seconds -> MB/s (10^6 bytes) or IOPS
		awk -v v="$vmm" -v r="$i" '$1 == "KT-BLK" && $4 > 0 {
			if ($2 ~ /^rand/) printf "BLKBENCH %s %s %s %.0f\n", v, r, $2, $3 / $4
			else printf "BLKBENCH %s %s %s %.2f\n", v, r, $2, $3 / $4 / 1e6 }' "$log"
	done
	i=$((i + 1))
done
KT_TIMEOUT=$limit
rm -rf "$W"
kt_ok "block benchmark: $RUNS round(s) of $VMMS, $SECS s per figure, cache=$cache"
