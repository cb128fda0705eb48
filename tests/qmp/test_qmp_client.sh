#!/bin/bash
# kestrel qmp, the client: one command, JSON arguments, errors and exit codes, --wait for an
# event, the shell over a pipe and (with python3) its line editor and history on a pty.
. "$(dirname "$0")/../lib/tap.sh"
K=${KESTREL:?}
T=$(mktemp -d)
VM=
cleanup() {
	[ -n "$VM" ] && kill "$VM" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
S=$T/qmp.sock

start_vm() {
	timeout 120 "$K" run --accel qtest --console none --name client-test \
		--qmp "unix:$S,server=on,wait=off" >"$T/vm.log" 2>&1 </dev/null &
	VM=$!
	for _ in $(seq 100); do
		[ -S "$S" ] && return 0
		sleep 0.05
	done
	return 1
}

out=$("$K" qmp "$T/nope.sock" query-status 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "cannot connect"; then
	tap_ok "no socket: one error line, exit 1"
else
	tap_fail "no socket: rc=$rc out=$out"
fi

if ! start_vm; then
	tap_fail "VM with a QMP socket did not start: $(head -c 300 "$T/vm.log")"
	tap_done
fi

out=$("$K" qmp "$S" query-status)
tap_check "query-status prints the return value" \
	[ "$out" = '{"running":true,"singlestep":false,"status":"running"}' ]
out=$("$K" qmp "unix:$S" query-name)
tap_check "unix:PATH form; query-name" [ "$out" = '{"name":"client-test"}' ]
out=$("$K" qmp "$S" human-monitor-command '{"command-line": "info status"}')
tap_check "JSON arguments; HMP text printed raw" [ "$out" = "VM status: running" ]
out=$("$K" qmp "$S" info mtree)
tap_check "'info mtree' as an HMP shortcut" grep -q "address-space: I/O" <<<"$out"
"$K" qmp "$S" no-such-command >"$T/o" 2>"$T/e"
rc=$?
tap_check "unknown command: exit 1, class on stderr" \
	test $rc -eq 1 -a ! -s "$T/o" -a -n "$(grep CommandNotFound "$T/e")"
"$K" qmp "$S" send-key '{"keys": 1}' 2>"$T/e"
rc=$?
tap_check "wrong argument type: exit 1, GenericError" \
	test $rc -eq 1 -a -n "$(grep GenericError "$T/e")"
"$K" qmp "$S" stop '{not json' 2>"$T/e"
rc=$?
tap_check "bad JSON arguments: exit 1 before sending" test $rc -eq 1 -a -n "$(grep JSON "$T/e")"
out=$("$K" qmp "$S" query-status)
tap_check "VM still running after those" grep -q '"status":"running"' <<<"$out"

out=$("$K" qmp -w STOP "$S" stop)
tap_check "--wait STOP after stop prints the event" grep -q '"event":"STOP"' <<<"$out"
out=$("$K" qmp "$S" query-status)
tap_check "status paused" grep -q '"status":"paused"' <<<"$out"
"$K" qmp -t 1 -w RESET "$S" query-status >/dev/null 2>"$T/e"
rc=$?
tap_check "--wait times out: exit 1" test $rc -eq 1 -a -n "$(grep 'no RESET event' "$T/e")"

out=$(printf 'cont\nquery-status\nquery-version\n' | "$K" qmp "$S")
tap_check "shell over a pipe: several commands and the RESUME event" \
	test -n "$(grep '"status":"running"' <<<"$out")" -a -n "$(grep '"event":"RESUME"' <<<"$out")"

if command -v python3 >/dev/null; then
	out=$(HOME=$T timeout 30 python3 "$(dirname "$0")/pty_shell.py" "$K" "$S") # no history in ~
	tap_check "shell on a tty: backspace editing" grep -q EDIT <<<"$out"
	tap_check "shell on a tty: up-arrow history" grep -q HIST <<<"$out"
	out=$(timeout 60 python3 "$(dirname "$0")/pty_history.py" "$K" "$S")
	tap_check "shell history saved in \$HOME/.kestrel_qmp_history" grep -q SAVED <<<"$out"
	tap_check "the next shell recalls it with the up arrow" grep -q RECALLED <<<"$out"
	tap_check "a HOME that cannot be written: the shell works, exit 0" grep -q NOHOME-OK <<<"$out"
else
	tap_skip "shell on a tty" "python3 is not installed (needed for the pty)"
	tap_skip "shell history on a tty" "python3 is not installed (needed for the pty)"
fi

"$K" qmp -e "$S" >"$T/events" &
EV=$!
sleep 0.3
"$K" qmp "$S" quit >/dev/null
wait $EV
rc=$?
tap_check "-e prints events until the VM closes the connection" \
	test $rc -eq 0 -a -n "$(grep '"reason":"host-qmp-quit"' "$T/events")"
wait $VM
rc=$?
VM=
tap_check "VM exits 0 on quit" test $rc -eq 0
tap_done
