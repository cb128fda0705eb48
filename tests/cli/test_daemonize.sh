#!/bin/bash
# --daemonize and --pidfile, as QEMU's -daemonize / -pidfile: the command returns once the VM
# and its monitor are up, the daemon's pid is in the (locked) pid file, a second instance with
# the same pid file is refused, an error before the VM is up is reported by the command itself,
# and quit over QMP ends the daemon and removes its files. Uses --accel qtest (no KVM needed).
. "$(dirname "$0")/../lib/tap.sh"
# tap_check runs one command: conditions joined with && are given to it as one shell snippet.
check() { tap_check "$1" bash -c "$2"; }
K=${KESTREL:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$K" run --accel qtest --daemonize --pidfile "$T/pid" --qmp "unix:$T/q.sock,server=on,wait=off" \
	--console none >"$T/out" 2>&1 </dev/null
rc=$?
tap_check "--daemonize returns 0 once the VM is up (got $rc: $(head -c 200 "$T/out"))" [ $rc -eq 0 ]
tap_check "--daemonize: the QMP socket exists when the command returns" [ -S "$T/q.sock" ]
pid=$(cat "$T/pid" 2>/dev/null)
check "--pidfile holds the daemon's pid ($pid), a live kestrel" \
	"[ -n '$pid' ] && [ \"\$(cat /proc/$pid/comm 2>/dev/null)\" = kestrel ]"
sid=$(awk '{ print $6 }' "/proc/$pid/stat" 2>/dev/null)
tap_check "--daemonize: the daemon leads its own session (sid $sid)" [ "$sid" = "$pid" ]
tap_check "--daemonize: stdin is /dev/null" [ "$(readlink "/proc/$pid/fd/0")" = /dev/null ]
"$K" run --accel qtest --pidfile "$T/pid" --console none >"$T/out" 2>&1 </dev/null
rc=$?
check "a second instance with the same pid file: exit 1, names the running pid" \
	"[ $rc -eq 1 ] && grep -q 'another instance is running (pid $pid)' '$T/out'"
st=$("$K" qmp "$T/q.sock" query-status 2>&1)
tap_check "the daemon answers QMP (got $st)" grep -q '"status":"running"' <<<"$st"
"$K" qmp "$T/q.sock" quit >/dev/null 2>&1
for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
tap_check "quit ends the daemon" [ ! -d "/proc/$pid" ]
tap_check "the pid file is removed on exit" [ ! -e "$T/pid" ]

# A failure before the VM is up is the command's: one line on its stderr, exit 1.
"$K" run --accel qtest --daemonize --console none --disk "$T/missing.raw" >"$T/out" 2>&1 </dev/null
rc=$?
check "--daemonize with a bad --disk: exit 1 with the message (got $rc)" \
	"[ $rc -eq 1 ] && grep -q missing.raw '$T/out'"
"$K" run --accel qtest --daemonize >"$T/out" 2>&1 </dev/null
rc=$?
check "--daemonize with the console on stdio is refused (exit 1)" \
	"[ $rc -eq 1 ] && grep -q 'needs --console none' '$T/out'"
# A stale pid file (its process gone, no lock held) is taken over.
echo 999999 >"$T/stale"
"$K" run --accel qtest --daemonize --pidfile "$T/stale" --qmp "unix:$T/q2.sock" --console none \
	>"$T/out" 2>&1 </dev/null
pid=$(cat "$T/stale" 2>/dev/null)
check "a stale pid file is taken over (now $pid)" "[ '$pid' != 999999 ] && [ -d /proc/$pid ]"
"$K" qmp "$T/q2.sock" quit >/dev/null 2>&1
for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
tap_done
