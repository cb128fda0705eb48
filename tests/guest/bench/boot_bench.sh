#!/bin/sh
# kt-limit: 2400
# Boot-time benchmark, run by scripts/bench.sh through tests/nested/run-cases.sh (natively where
# /dev/kvm works, else inside the nested L1 guest). Not a test: it prints one line per run
#   BENCH <vmm> <run> <seconds to KESTREL-INIT-START or NA> <peak RSS kB or NA>
# and one "ok" line when it finished.
#
# Time: from just before the VMM process is started to the moment the guest's /init marker
# arrives on its stdout (/proc/uptime, 10 ms resolution). Peak RSS: VmHWM of the VMM process
# (/proc/PID/status) read when the marker arrives, before the VMM is stopped. Runs of the VMMs
# are interleaved so that a slow phase of the machine hits all of them alike.
# kt-needs: qemu
. "$KT_LIB"
[ "$1" = run ] || exit 0

RUNS=${KT_BENCH_RUNS:-5}
VMMS=${KT_BENCH_VMMS:-kestrel qemu-microvm qemu-pc}
LIMIT=${KT_TIMEOUT:-120}
CMDLINE="console=ttyS0 kestrel.test=bench"
fifo=$KT_OUT/bench.fifo

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# measure VMM RUN COMMAND...: one boot, one BENCH line
measure() {
	_vmm=$1 _run=$2
	shift 2
	rm -f "$fifo"
	mkfifo "$fifo"
	_t0=$(uptime_s)
	"$@" >"$fifo" 2>"$KT_OUT/bench-$_vmm.err" </dev/null &
	_pid=$!
	(
		sleep "$LIMIT"
		kill "$_pid" 2>/dev/null
	) &
	_dog=$!
	# Keep the read end open on fd 3 after the marker, so the VMM does not die of SIGPIPE
	# before its VmHWM is read.
	exec 3<"$fifo"
	_t1=
	while IFS= read -r _line <&3; do
		case "$_line" in
		*KESTREL-INIT-START*)
			_t1=$(uptime_s)
			break
			;;
		esac
	done
	_hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$_pid/status" 2>/dev/null)
	kill "$_pid" 2>/dev/null
	exec 3<&-
	wait "$_pid" 2>/dev/null
	kill "$_dog" 2>/dev/null
	wait "$_dog" 2>/dev/null
	if [ -n "$_t1" ]; then
		_secs=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.2f", b - a }')
	else
		_secs=NA
		echo "# $_vmm run $_run: no KESTREL-INIT-START; stderr: $(head -c 200 "$KT_OUT/bench-$_vmm.err")"
	fi
	echo "BENCH $_vmm $_run $_secs ${_hwm:-NA}"
}

QEMU_COMMON="-accel kvm -m 512 -smp 1 -nodefaults -no-user-config -display none -serial stdio"
i=1
while [ $i -le "$RUNS" ]; do
	for vmm in $VMMS; do
		case $vmm in
		kestrel)
			measure kestrel $i "$KESTREL" run --kernel "$KT_GUEST/vmlinuz" \
				--initrd "$KT_GUEST/initramfs.cpio.gz" --cmdline "$CMDLINE" --mem 512M \
				--cpus 1 --console stdio
			;;
		qemu-microvm)
			measure qemu-microvm $i "$KT_QEMU" -M microvm $QEMU_COMMON \
				-kernel "$KT_GUEST/vmlinuz" -initrd "$KT_GUEST/initramfs.cpio.gz" \
				-append "$CMDLINE"
			;;
		qemu-pc)
			measure qemu-pc $i "$KT_QEMU" -M pc $QEMU_COMMON \
				-kernel "$KT_GUEST/vmlinuz" -initrd "$KT_GUEST/initramfs.cpio.gz" \
				-append "$CMDLINE"
			;;
		esac
	done
	i=$((i + 1))
done
rm -f "$fifo"
kt_ok "boot benchmark: $RUNS interleaved runs of $VMMS"
