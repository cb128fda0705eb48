#!/bin/sh
# QMP against a booted guest, driven with the `kestrel qmp` client (no python in L1):
# query-status running -> stop (status paused, the guest's serial ticks stop) -> cont (ticks
# resume, the guest clock has stood still through the pause) -> query-cpus-fast thread ids are
# the vCPU threads -> info registers -> send-key letters and ctrl-alt-delete reach the guest's
# evdev -> system_powerdown: busybox acpid's handler powers off -> SHUTDOWN event -> exit 0.
# Guest side: tests/guest/guest-scripts/qmp.sh.
. "$KT_LIB"
[ "$1" = run ] || exit 0
log=$KT_OUT/qmp.log
sock=/tmp/kt-qmp-$$.sock
events=$KT_OUT/qmp-events.log
rm -f "$sock"
echo "$KESTREL run ... --qmp unix:$sock" >"$log.cmd"
timeout -k 5 "$KT_TIMEOUT" "$KESTREL" run --kernel "$KT_GUEST/vmlinuz" \
	--initrd "$KT_GUEST/initramfs.cpio.gz" --cmdline "console=ttyS0 kestrel.test=qmp" \
	--mem 256M --cpus 1 --console stdio --name qmp-guest \
	--qmp "unix:$sock,server=on,wait=off" >"$log" 2>"$log.err" </dev/null &
pid=$!
q() { "$KESTREL" qmp -t 20 "$sock" "$@"; }
# wait_for PATTERN SECONDS: until the console log has PATTERN; false on timeout or VM exit
wait_for() {
	_i=0
	while [ $_i -lt $(($2 * 5)) ]; do
		grep -q "$1" "$log" 2>/dev/null && return 0
		kill -0 $pid 2>/dev/null || return 1
		usleep 200000
		_i=$((_i + 1))
	done
	return 1
}
finish() {
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ -n "${evpid:-}" ] && kill $evpid 2>/dev/null
	exit 0
}

i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do
	usleep 100000
	i=$((i + 1))
done
if [ ! -S "$sock" ]; then
	kt_fail "qmp: no QMP socket $sock ($(head -c 200 "$log.err"))"
	finish
fi
"$KESTREL" qmp -e -t 0 "$sock" >"$events" 2>&1 &
evpid=$!

kt_expect "qmp: query-status before the guest is up" \
	"$(q query-status)" '{"running":true,"singlestep":false,"status":"running"}'
if ! wait_for "KT qmp-ready" "$KT_TIMEOUT"; then
	kt_fail "qmp: the guest never reached its qmp script"
	tail -n 15 "$log" | kt_diag
	finish
fi
kt_ok "qmp: guest running its qmp script"
grep "KT acpid=\|KT kbd=\|KT power_button" "$log" | kt_diag

# stop: status paused, the guest's ticks stop.
q stop >/dev/null
kt_expect "qmp: query-status after stop" "$(q query-status)" \
	'{"running":false,"singlestep":false,"status":"paused"}'
t_stop=$(cut -d' ' -f1 /proc/uptime)
n1=$(grep -c "KT tick" "$log")
sleep 4
n2=$(grep -c "KT tick" "$log")
kt_expect "qmp: no serial output while paused (ticks before/after 4 s)" "$n2" "$n1"
last_before=$(grep "KT tick" "$log" | tail -n 1 | cut -d' ' -f4)
q cont >/dev/null
t_cont=$(cut -d' ' -f1 /proc/uptime)
kt_expect "qmp: query-status after cont" "$(q query-status | cut -d, -f3)" '"status":"running"}'
if wait_for "KT tick $((n2 + 2)) " 20; then
	kt_ok "qmp: ticks resume after cont"
else
	kt_fail "qmp: no new tick 20 s after cont"
fi
first_after=$(grep "KT tick $((n2 + 1)) " "$log" | cut -d' ' -f4)
# kvmclock stands still while the VM is paused (KVM_GET_CLOCK at stop, KVM_SET_CLOCK at cont),
# so the guest's uptime moves by one tick interval plus tick latency across the pause, and by
# less than the pause itself: a clock that ran on through the pause would show at least the pause.
verdict=$(awk -v a="$last_before" -v b="$first_after" -v p1="$t_stop" -v p2="$t_cont" \
	'BEGIN { j = b - a; p = p2 - p1; printf "%s %.1f %.1f", (a != "" && b != "" && j < p) ? "ok" : "bad", j, p }')
set -- $verdict
if [ "$1" = ok ]; then
	kt_ok "qmp: guest clock moved ${2}s over a ${3}s pause (less than the pause: it stood still)"
else
	kt_fail "qmp: guest clock moved '${2}'s over a ${3}s pause (it ran on while paused)"
fi

# query-cpus-fast: the thread id is kestrel's "CPU 0/KVM" thread.
tid=$(q query-cpus-fast | sed -n 's/.*"thread-id":\([0-9]*\),"props".*/\1/p')
comm=$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null)
kt_expect "qmp: query-cpus-fast thread-id is the vCPU thread" "$comm" "CPU 0/KVM"
if q info registers | grep -q "RIP="; then
	kt_ok "qmp: info registers shows RIP"
else
	kt_fail "qmp: info registers has no RIP"
fi
if q info mtree | grep -q "serial"; then kt_ok "qmp: info mtree"; else kt_fail "qmp: info mtree"; fi

# send-key: letters, then ctrl-alt-delete (Linux KEY_ codes: k 37, v 47, m 50, ctrl 29,
# alt 56, delete 111).
q send-key '{"keys":[{"type":"qcode","data":"k"}]}' >/dev/null
q send-key '{"keys":[{"type":"qcode","data":"v"}]}' >/dev/null
q send-key '{"keys":[{"type":"qcode","data":"m"}]}' >/dev/null
q send-key '{"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}]}' >/dev/null
if wait_for "KT key code=29 value=0" 20; then :; fi
keys=$(sed -n 's/.*KT key code=\([0-9]*\) value=1.*/\1/p' "$log" | tr '\n' ' ')
kt_expect "qmp: send-key k v m reach the guest's keyboard (evdev)" \
	"$(echo "$keys" | cut -d' ' -f1-3)" "37 47 50"
kt_expect "qmp: send-key ctrl-alt-delete reaches the guest" "$(echo "$keys" | cut -d' ' -f4-6)" \
	"29 56 111"
rel=$(sed -n 's/.*KT key code=\([0-9]*\) value=0.*/\1/p' "$log" | tr '\n' ' ')
kt_expect "qmp: keys released, ctrl-alt-delete in reverse order" "$rel" "37 47 50 111 56 29 "

# system_powerdown: ACPI power button -> acpid -> poweroff -> SHUTDOWN event, exit 0.
q system_powerdown >/dev/null
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 60 ]; do
	sleep 1
	i=$((i + 1))
done
if kill -0 $pid 2>/dev/null; then
	kt_fail "qmp: still running 60 s after system_powerdown"
	tail -n 10 "$log" | kt_diag
	finish
fi
wait $pid
rc=$?
kt_expect "qmp: exit status after the guest powered off" "$rc" 0
if grep -q "KT acpid-power-button" "$log"; then
	kt_ok "qmp: busybox acpid ran the power button handler"
else
	kt_fail "qmp: no 'KT acpid-power-button' on the console"
fi
wait $evpid 2>/dev/null
evpid=
for e in STOP RESUME POWERDOWN; do
	if grep -q "\"event\":\"$e\"" "$events"; then kt_ok "qmp: $e event"; else kt_fail "qmp: no $e event"; fi
done
if grep -q '"event":"SHUTDOWN","data":{"guest":true,"reason":"guest-shutdown"}' "$events"; then
	kt_ok "qmp: SHUTDOWN event (guest true, guest-shutdown)"
else
	kt_fail "qmp: no guest SHUTDOWN event"
	kt_diag <"$events"
fi
exit 0
