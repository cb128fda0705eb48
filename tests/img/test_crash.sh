#!/bin/bash
# qcow2 crash safety: a writer (tests/img/crashwriter.c) doing random writes, zeroes,
# discards, compressed writes and flushes on one image is killed with SIGKILL at random
# points, again and again on the same image. After every kill `kestrel img check` and
# `qemu-img check` must find no corruption (leaks are allowed) and every write that was
# acknowledged and then flushed must read back. KESTREL_LONG=1 runs more iterations.
. "$KESTREL_ROOT/tests/lib/tap.sh"
CW=$KESTREL_BUILD/tools/img/crashwriter
K=$KESTREL
[ -x "$CW" ] || { tap_fail "crashwriter not built ($CW)"; tap_done; }
ITER=${CRASH_ITER:-200}
[ -n "${KESTREL_LONG:-}" ] && ITER=1000
HAVE_QEMU=1
command -v qemu-img >/dev/null || HAVE_QEMU=0
T=$(mktemp -d /tmp/kestrel-crash.XXXXXX)
trap 'rm -rf "$T"' EXIT
# private copies: a rebuild of the tree while this long test runs must not pull them away
cp "$CW" "$T/crashwriter" && cp "$K" "$T/kestrel" && CW=$T/crashwriter K=$T/kestrel
for cs in 4k 64k; do
	img=$T/crash-$cs.qcow2 log=$T/crash-$cs.log
	$K img create -f qcow2 -o cluster_size=$cs "$img" 16M >/dev/null
	n=$((ITER / 2)) kc_bad=0 qc_bad=0 lost=0 leaks=0 start=$SECONDS
	for i in $(seq 1 $n); do
		"$CW" write "$img" "$log" "$i" 2>"$T/err" &
		pid=$!
		sleep "0.0$((RANDOM % 6 + 1))$((RANDOM % 10))"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		if [ -s "$T/err" ]; then
			echo "# writer error: $(cat "$T/err")"
			kc_bad=$((kc_bad + 1))
		fi
		$K img check "$img" >"$T/kc" 2>&1
		rc=$?
		[ $rc -eq 3 ] && leaks=$((leaks + 1))
		if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
			kc_bad=$((kc_bad + 1))
			echo "# iteration $i: kestrel img check exit $rc"; head -5 "$T/kc" | sed 's/^/# /'
		fi
		if [ $HAVE_QEMU = 1 ]; then
			qemu-img check "$img" >"$T/qc" 2>&1
			rc=$?
			if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
				qc_bad=$((qc_bad + 1))
				echo "# iteration $i: qemu-img check exit $rc"; head -5 "$T/qc" | sed 's/^/# /'
			fi
		fi
		if ! "$CW" verify "$img" "$log" >"$T/v" 2>&1; then
			lost=$((lost + 1))
			echo "# iteration $i:"; head -5 "$T/v" | sed 's/^/# /'
		fi
		# now and then repair the leaks, as a user would
		if [ $((i % 25)) -eq 0 ]; then
			$K img check -r all "$img" >/dev/null 2>&1
			"$CW" verify "$img" "$log" >/dev/null 2>&1 || { lost=$((lost + 1)); echo "# lost after repair at $i"; }
		fi
		[ $kc_bad -gt 3 ] || [ $qc_bad -gt 3 ] || [ $lost -gt 3 ] && break
	done
	echo "# cluster_size=$cs: $i kills in $((SECONDS - start)) s, $leaks with leaks; $(tail -1 "$T/v")"
	tap_check "cluster_size=$cs: kestrel img check finds no corruption after $i SIGKILLs" test $kc_bad -eq 0
	if [ $HAVE_QEMU = 1 ]; then
		tap_check "cluster_size=$cs: qemu-img check finds no corruption after $i SIGKILLs" test $qc_bad -eq 0
	else
		tap_skip "cluster_size=$cs: qemu-img check" "qemu-img not installed"
	fi
	tap_check "cluster_size=$cs: every flushed write survives $i SIGKILLs" test $lost -eq 0
done
tap_done
