#!/bin/sh
# SIGTERM ends a running VM cleanly: kestrel stops its vCPUs, says why, and exits 0 (as QEMU does
# when terminated by a signal); the guest's console output up to then is all there.
. "$KT_LIB"
[ "$1" = run ] || exit 0
log=$KT_OUT/signals.log
"$KESTREL" run --kernel "$KT_GUEST/vmlinuz" --initrd "$KT_GUEST/initramfs.cpio.gz" \
	--cmdline "console=ttyS0 kestrel.test=idle" --mem 256M --cpus 2 --console stdio -v \
	>"$log" 2>"$log.err" </dev/null &
pid=$!
waited=0
while [ $waited -lt "$KT_TIMEOUT" ] && ! grep -q "KT idle" "$log" 2>/dev/null &&
	kill -0 $pid 2>/dev/null; do
	sleep 1
	waited=$((waited + 1))
done
if ! grep -q "KT idle" "$log"; then
	kill -KILL $pid 2>/dev/null
	wait $pid
	kt_fail "signals: the guest never reached its idle script"
	tail -n 15 "$log" | kt_diag
	exit 0
fi
kill -TERM $pid
t0=$(cut -d' ' -f1 /proc/uptime)
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 20 ]; do
	sleep 1
	i=$((i + 1))
done
if kill -0 $pid 2>/dev/null; then
	kill -KILL $pid
	wait $pid
	kt_fail "signals: still running 20 s after SIGTERM"
	exit 0
fi
wait $pid
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
kt_expect "signals: exit status after SIGTERM" "$rc" 0
if grep -q "terminating on signal 15" "$log.err"; then
	kt_ok "signals: says it was terminated by signal 15"
else
	kt_fail "signals: no 'terminating on signal 15' on stderr ($(head -c 200 "$log.err"))"
fi
echo "SIGTERM to exit: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" | kt_diag
