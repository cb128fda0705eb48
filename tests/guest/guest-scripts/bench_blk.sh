#!/bin/sh
# Guest side of make bench's block part (tests/guest/bench/blk_bench.sh): on /dev/vda, the disk
# under test, sequential writes and reads of 4 KiB and 1 MiB blocks with O_DIRECT (busybox dd
# oflag=direct / iflag=direct: no guest page cache), then 4 KiB random reads at queue depth 1
# and 8 with the blkrand helper (tests/guest/bench/blkrand.c), which the host puts on /dev/vdb
# (its size in bytes is kt.blkrand= on the kernel command line).
#
# Each sequential figure repeats passes of dd (successive parts of the disk) until
# kt.blk_secs= seconds (default 3) have passed, so it adapts to fast and slow hosts alike.
# Output, one line per figure:  KT-BLK <name> <bytes or reads> <seconds>
secs=3 toolsize=
for w in $(cat /proc/cmdline); do
	case "$w" in
	kt.blk_secs=*) secs=${w#kt.blk_secs=} ;;
	kt.blkrand=*) toolsize=${w#kt.blkrand=} ;;
	esac
done
dev=/dev/vda
disk_bytes=$(($(cat /sys/block/vda/size) * 512))
echo "KT blk_disk_bytes=$disk_bytes"

up() { cut -d' ' -f1 /proc/uptime; }
# elapsed T0 T1: seconds between two /proc/uptime readings
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# seq NAME read|write BS PASS_BYTES: passes of PASS_BYTES at successive offsets until $secs
seq_test() {
	_name=$1 _dir=$2 _bs=$3 _pass=$4
	_count=$((_pass / _bs))
	_passes_per_disk=$((disk_bytes / _pass))
	_n=0 _t0=$(up)
	while :; do
		_at=$(((_n % _passes_per_disk) * _count))
		if [ "$_dir" = write ]; then
			dd if=/dev/zero of=$dev bs="$_bs" count=$_count seek=$_at oflag=direct \
				conv=notrunc 2>/dev/null || { echo "KT-BLK-ERR $_name dd failed"; return; }
		else
			dd if=$dev of=/dev/null bs="$_bs" count=$_count skip=$_at iflag=direct \
				2>/dev/null || { echo "KT-BLK-ERR $_name dd failed"; return; }
		fi
		_n=$((_n + 1))
		_t1=$(up)
		awk -v e="$(elapsed "$_t0" "$_t1")" -v s="$secs" 'BEGIN { exit !(e >= s) }' && break
	done
	echo "KT-BLK $_name $((_n * _pass)) $(elapsed "$_t0" "$_t1")"
}

seq_test seq-write-4k write 4096 $((1 << 20))
seq_test seq-write-1m write 1048576 $((8 << 20))
seq_test seq-read-4k read 4096 $((1 << 20))
seq_test seq-read-1m read 1048576 $((8 << 20))

if [ -n "$toolsize" ] && [ -b /dev/vdb ]; then
	head -c "$toolsize" /dev/vdb >/tmp/blkrand && chmod +x /tmp/blkrand
	for qd in 1 8; do
		if out=$(/tmp/blkrand $dev "$secs" $qd 2>&1); then
			# "reads N seconds S"
			# shellcheck disable=SC2086
			set -- $out
			echo "KT-BLK rand-read-4k-qd$qd $2 $4"
		else
			echo "KT-BLK-ERR rand-read-4k-qd$qd $out"
		fi
	done
else
	echo "KT-BLK-ERR rand-read no blkrand helper on /dev/vdb"
fi
echo "KT bench-blk-done"
poweroff -f
