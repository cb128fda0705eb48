# TAP helpers for shell tests. Source it, call the functions, end with tap_done.
# Each call prints one TAP line, which tests/run.sh counts.
_tap_n=0
_tap_failed=0
tap_ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
tap_fail() { _tap_n=$((_tap_n + 1)); _tap_failed=1; echo "not ok $_tap_n - $*"; }
tap_skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
# tap_check NAME COMMAND...: ok if the command succeeds.
tap_check() { local n=$1; shift; if "$@"; then tap_ok "$n"; else tap_fail "$n"; fi; }
tap_done() { echo "1..$_tap_n"; exit $_tap_failed; }
