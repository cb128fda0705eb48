#!/bin/bash
# kestrel run --qmp: a spec Kestrel cannot honour is one clear line on stderr and exit 1,
# before anything starts (no kernel is needed to see it: --accel qtest).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/cli.sh"
K=${KESTREL:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# bad_qmp NAME PATTERN QMP-SPEC...: kestrel run with these --qmp fails as expect_error says.
bad_qmp() {
	local name=$1 pattern=$2 args=()
	shift 2
	for s in "$@"; do args+=(--qmp "$s"); done
	expect_error "$name" "$pattern" run --accel qtest --console none "${args[@]}"
}

S=$T/q.sock
bad_qmp "unknown option" "--qmp: unknown option 'foo' \(server=on, wait=on\|off\)" \
	"unix:$S,server=on,foo=bar"
bad_qmp "unknown option without a value" "unknown option 'telnet'" "unix:$S,telnet"
bad_qmp "server=off is refused, saying why" "server=off .*not supported" "unix:$S,server=off"
bad_qmp "wait=maybe" "--qmp: wait=maybe is not on or off" "unix:$S,server=on,wait=maybe"
bad_qmp "server=yes" "--qmp: server=yes is not on or off" "unix:$S,server=yes"
bad_qmp "not unix: or tcp:" "'pipe:x' is not unix:PATH or tcp:" "pipe:x"
bad_qmp "unix: without a path" "unix:PATH needs a path" "unix:"
bad_qmp "path too long" "unix:PATH needs a path of 1 to 107 bytes" "unix:$(printf 'a%.0s' {1..120})"
bad_qmp "tcp without a port" "is not tcp:HOST:PORT" "tcp:localhost"
bad_qmp "tcp with an empty port" "needs a port" "tcp:127.0.0.1:"
bad_qmp "IPv6 without the closing bracket" "is not tcp:\[IPV6-ADDRESS\]:PORT" "tcp:[::1:4444"
bad_qmp "five monitors" "--qmp: at most 4 monitors" "unix:$T/1" "unix:$T/2" "unix:$T/3" \
	"unix:$T/4" "unix:$T/5"
bad_qmp "a host that does not resolve" "--qmp: no-such-host.invalid:1: " \
	"tcp:no-such-host.invalid:1"
bad_qmp "a second monitor that cannot listen" "cannot listen on $T/nodir/q.sock" \
	"unix:$S" "unix:$T/nodir/q.sock"
tap_check "the first monitor's socket is gone again" test ! -e "$S"
tap_done
