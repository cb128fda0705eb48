#!/bin/bash
# kestrel run --qmp: a spec Kestrel cannot honour is one clear line on stderr and exit 1,
# before anything starts (no kernel is needed to see it: --accel qtest).
. "$(dirname "$0")/../lib/tap.sh"
K=${KESTREL:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# expect_error NAME PATTERN QMP-SPEC...: exit 1, exactly one stderr line matching PATTERN.
expect_error() {
	local name=$1 pattern=$2
	shift 2
	local args=()
	for s in "$@"; do args+=(--qmp "$s"); done
	timeout 10 $K run --accel qtest --console none "${args[@]}" >"$T/out" 2>"$T/err" </dev/null
	local rc=$? lines
	lines=$(wc -l <"$T/err")
	if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE -- "$pattern" "$T/err"; then
		tap_ok "$name"
	else
		tap_fail "$name: exit $rc, $lines stderr line(s): $(head -c 300 "$T/err")"
	fi
}

S=$T/q.sock
expect_error "unknown option" "--qmp: unknown option 'foo' \(server=on, wait=on\|off\)" \
	"unix:$S,server=on,foo=bar"
expect_error "unknown option without a value" "unknown option 'telnet'" "unix:$S,telnet"
expect_error "server=off is refused, saying why" "server=off .*not supported" \
	"unix:$S,server=off"
expect_error "wait=maybe" "--qmp: wait=maybe is not on or off" "unix:$S,server=on,wait=maybe"
expect_error "server=yes" "--qmp: server=yes is not on or off" "unix:$S,server=yes"
expect_error "not unix: or tcp:" "'pipe:x' is not unix:PATH or tcp:" "pipe:x"
expect_error "unix: without a path" "unix:PATH needs a path" "unix:"
expect_error "path too long" "unix:PATH needs a path of 1 to 107 bytes" "unix:$(printf 'a%.0s' {1..120})"
expect_error "tcp without a port" "is not tcp:HOST:PORT" "tcp:localhost"
expect_error "tcp with an empty port" "needs a port" "tcp:127.0.0.1:"
expect_error "IPv6 without the closing bracket" "is not tcp:\[IPV6-ADDRESS\]:PORT" "tcp:[::1:4444"
expect_error "five monitors" "--qmp: at most 4 monitors" "unix:$T/1" "unix:$T/2" "unix:$T/3" \
	"unix:$T/4" "unix:$T/5"
expect_error "a host that does not resolve" "--qmp: no-such-host.invalid:1: " \
	"tcp:no-such-host.invalid:1"
expect_error "a second monitor that cannot listen" "cannot listen on $T/nodir/q.sock" \
	"unix:$S" "unix:$T/nodir/q.sock"
tap_check "the first monitor's socket is gone again" test ! -e "$S"
tap_done
