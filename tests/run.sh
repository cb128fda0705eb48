#!/bin/bash
# Kestrel test runner: runs every test program and totals their TAP output.
#
# A test program is an executable under $BUILD/tests/ (cmocka binaries, run with TAP output)
# or a script tests/<dir>/test_*.sh. Each prints TAP lines:
#   ok N - name            a pass
#   not ok N - name        a failure
#   ok N - name # SKIP why a skip, with its reason (printed in the summary)
# A program that exits non-zero without printing "not ok", or prints no result at all,
# counts as one failure: a crash or a test that ran nothing must never look like a pass.
# Full output of each program goes to $BUILD/test-logs/<name>.log.
#
# Usage: tests/run.sh [BUILD] [FILTER]   (FILTER: substring of the program name)
set -u
BUILD=${1:-build}
FILTER=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=$(cd "$BUILD" && pwd)
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
export KESTREL_BUILD=$BUILD KESTREL=$BUILD/kestrel KESTREL_ROOT=$ROOT
# The test guest is fetched once into build/guest; other builds (build-asan) share it.
if [ -z "${KESTREL_GUEST:-}" ]; then
	KESTREL_GUEST=$BUILD/guest
	[ -f "$KESTREL_GUEST/vmlinuz" ] || KESTREL_GUEST=$ROOT/build/guest
fi
export KESTREL_GUEST KT_GUEST_DIR=${KT_GUEST_DIR:-$KESTREL_GUEST}
export CMOCKA_MESSAGE_OUTPUT=TAP

passed=0 failed=0 skipped=0 known=0
failures=() skips=() knowns=()

# tests/known-failures.txt: PROGRAM<TAB>SIGNATURE<TAB>REASON (see the file's header)
known_prog=() known_sig=() known_why=()
while IFS=$'\t' read -r kp ks kw; do
	case "$kp" in '' | '#'*) continue ;; esac
	known_prog+=("$kp") known_sig+=("$ks") known_why+=("$kw")
done <"$ROOT/tests/known-failures.txt" 2>/dev/null

known_reason() { # program name, TAP line -> prints the reason if it is a known failure
	local i
	for i in "${!known_prog[@]}"; do
		# PROGRAM@DIR limits an entry to one build directory (e.g. build-asan).
		if { [ "${known_prog[$i]}" = "$1" ] || [ "${known_prog[$i]}" = "$1@${BUILD##*/}" ]; } &&
			grep -qE -- "${known_sig[$i]}" <<<"$2"; then
			echo "${known_why[$i]}"
			return 0
		fi
	done
	return 1
}

run_one() { # name, command...
	local name=$1; shift
	local log=$LOGS/${name//\//_}.log
	local t0=$SECONDS
	printf '%-40s ' "$name"
	"$@" >"$log" 2>&1 </dev/null
	local rc=$?
	local p=0 f=0 s=0 k=0 line why
	while IFS= read -r line; do
		case "$line" in
		# cmocka 1.1 prints a skipped test as "not ok N # SKIP name": a skip, not a failure.
		ok*"# SKIP"* | ok*"# skip"* | "not ok"*"# SKIP"*) s=$((s + 1)); skips+=("$name: ${line#*# [Ss][Kk][Ii][Pp]}") ;;
		"not ok"*)
			if why=$(known_reason "$name" "$line"); then
				k=$((k + 1)); knowns+=("$name: ${line#not ok } -- known: $why")
			else
				f=$((f + 1)); failures+=("$name: ${line#not ok }")
			fi ;;
		ok*) p=$((p + 1)) ;;
		esac
	done < <(grep -aE '^(not )?ok\b' "$log")
	if [ $rc -ne 0 ] && [ $f -eq 0 ] && [ $k -eq 0 ]; then
		f=1; failures+=("$name: exited with status $rc (see $log)")
	fi
	if [ $((p + f + s + k)) -eq 0 ]; then
		f=1; failures+=("$name: printed no test result (see $log)")
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s + k)) known=$((known + k))
	printf '%3d passed %3d failed %3d skipped' $p $f $s
	[ $k -gt 0 ] && printf ' %3d known failures' $k
	printf '  (%ds)\n' $((SECONDS - t0))
}

progs=()
while IFS= read -r f; do progs+=("$f"); done < <(
	find "$BUILD/tests" -type f -perm -u+x 2>/dev/null | sort
	ls tests/*/test_*.sh 2>/dev/null | sort)

for prog in "${progs[@]}"; do
	name=${prog#"$BUILD/tests/"}
	name=${name#tests/}
	[ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && continue
	run_one "$name" "$prog"
done

echo
for s in "${skips[@]}"; do echo "SKIP $s"; done
for k in "${knowns[@]}"; do echo "KNOWN $k"; done
[ $known -gt 0 ] && echo "($known known failures from tests/known-failures.txt are counted as skipped)"
for f in "${failures[@]}"; do echo "FAIL $f"; done
if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
