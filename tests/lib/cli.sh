# Helpers for command line tests (tests/cli). Source after tap.sh, with K (the kestrel
# command) and T (a scratch directory) set.

# expect_error NAME PATTERN ARGS...: `$K ARGS` exits 1 with exactly one stderr line matching
# PATTERN (a bad option is one clear line and exit code 1).
expect_error() {
	local name=$1 pattern=$2
	shift 2
	$K "$@" >"$T/out" 2>"$T/err" </dev/null # unquoted: K may carry a setpriv prefix
	local rc=$? lines
	lines=$(wc -l <"$T/err")
	if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE -- "$pattern" "$T/err"; then
		tap_ok "$name"
	else
		tap_fail "$name: exit $rc, $lines stderr line(s): $(head -c 300 "$T/err")"
	fi
}
