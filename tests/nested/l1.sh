#!/bin/bash
# The nested-KVM harness: run guest cases inside an L1 Linux guest that has /dev/kvm.
#
#   tests/nested/l1.sh [options] CASE.sh...
#     -f SRC        extra file or directory, copied to /opt/kt/files/<basename> in L1 ($KT_FILES)
#     -q            carry QEMU (binary, libraries, firmware) into L1 even if no case asks
#                   (a case asks with a "# kt-needs: qemu" line)
#     -i SCRIPT     interactive: no cases; L1 runs SCRIPT (sh) with the console as its terminal
#     -t SECONDS    time limit for the whole L1 run (default $KT_L1_LIMIT, else 120 + 400 per case);
#                   a backstop: l1-init kills a case after $KT_CASE_LIMIT s (default 600, or the
#                   case's "# kt-limit: N" line), and a console silent for $KT_L1_SILENCE s (180;
#                   L1 prints a heartbeat every 30 s) means L1 hung and is stopped
#     -n NAME       run name: files go to $KESTREL_BUILD/nested/NAME/ (default "l1"); runs with
#                   the same name wait for each other, runs with different names do not collide
#
# The L1 guest is Debian's kernel (the test guest's own vmlinuz) under
#   qemu-system-x86_64 -accel tcg -cpu EPYC,+svm -smp 1 -m 4096
# (KT_L1_SMP and KT_L1_ACCEL change -smp and -accel for experiments: with -smp 2, L1's own
# kernel now and then panicked or wedged in KVM code, and multi-vCPU L2 boots hung or
# triple-faulted, under load several times per make check; with one L1 vCPU the same runs pass
# and take no longer, since TCG gains little from a second thread on a 2-core host)
# with an initramfs holding busybox, irqbypass/kvm/ccp/kvm-amd (tests/nested/l1-init loads them,
# and /dev/kvm appears), $KESTREL and its shared libraries, the L2 test guest ($KT_GUEST),
# tests/guest/lib.sh, tests/lib/tap.sh, the cases and what their setup step built.
# The initramfs is built in $KESTREL_BUILD/nested/NAME/ and reused while its inputs are unchanged.
#
# Output: every line the cases print (unnumbered TAP "ok - ..." / "not ok - ..." and "# ..."
# diagnostics; tests/nested/run-cases.sh numbers them), plus a "not ok" line saying why when L1
# did not get to the end: L1 boot failure, /dev/kvm missing in L1, a time-out, or an early exit.
# The whole L1 console log is kept in $KESTREL_BUILD/nested/NAME/l1-console.log, the logs each
# case left in L1 (VM consoles, stderr, command lines) in $KESTREL_BUILD/nested/NAME/out/CASE/.
# Exit status: 0 when L1 reached its end marker, 1 otherwise.
set -u
# The body is one { } block, parsed whole before it runs: editing this file while a run is
# under way (a shared tree) cannot change what that run executes.
{
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KESTREL_BUILD:-$ROOT/build}
KESTREL=${KESTREL:-$BUILD/kestrel}
GUEST=${KT_GUEST_DIR:-$BUILD/guest}
NDIR=$BUILD/nested
ART=${KT_ART:-$NDIR/art}
QEMU=${KT_HOST_QEMU:-qemu-system-x86_64}

files=() with_qemu=0 interactive="" limit="" name=l1
while getopts "f:qi:t:n:" opt; do
	case $opt in
	f) files+=("$OPTARG") ;;
	q) with_qemu=1 ;;
	i) interactive=$OPTARG ;;
	t) limit=$OPTARG ;;
	n) name=$OPTARG ;;
	*) echo "usage: $0 [-f SRC]... [-q] [-i SCRIPT] [-t SECONDS] [-n NAME] CASE.sh..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cases=("$@")
[ -n "$limit" ] || limit=${KT_L1_LIMIT:-$((120 + 400 * ${#cases[@]}))}

will_retry=0
fail() { # the failure, or a diagnostic when the unfinished cases are about to run again
	if [ $will_retry = 1 ]; then echo "# nested L1: $*"; else echo "not ok - nested L1: $*"; fi
}
RUN=$NDIR/$name
mkdir -p "$RUN" "$ART"
exec 9>"$RUN/.lock"
if ! flock -n 9; then
	echo "# nested L1: another run named '$name' is using $RUN: waiting for it" >&2
	flock 9
fi

for c in "${cases[@]}"; do
	grep -q '^# kt-needs:.*\bqemu\b' "$c" && with_qemu=1
done

if ! command -v "$QEMU" >/dev/null; then
	fail "$QEMU is not installed on the host"
	exit 1
fi
for f in "$GUEST/vmlinuz" "$GUEST/initramfs.cpio.gz" "$GUEST/modules-kvm/kvm.ko" "$KESTREL"; do
	if [ ! -e "$f" ]; then
		fail "missing $f (run make, and scripts/make-guest.sh $GUEST)"
		exit 1
	fi
done

# --- the L1 initramfs ---------------------------------------------------------------------------
# Input list: "SRC DEST" pairs (DEST relative to the initramfs root). Shared libraries keep
# their paths so the dynamic loader finds them.
inputs=$(mktemp)
trap 'rm -f "$inputs"' EXIT
add() { echo "$1 $2" >>"$inputs"; }
add_bin() { # binary DEST: the binary, its libraries and the loader
	local lib
	add "$1" "$2"
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		add "$lib" "${lib#/}"
	done
}
add "$ROOT/tests/nested/l1-init" init
add "$(command -v busybox)" bin/busybox
for m in "$GUEST"/modules-kvm/*.ko; do add "$m" "lib/modules-kvm/$(basename "$m")"; done
add_bin "$KESTREL" opt/kt/kestrel
add "$GUEST/vmlinuz" opt/kt/guest/vmlinuz
add "$GUEST/initramfs.cpio.gz" opt/kt/guest/initramfs.cpio.gz
add "$ROOT/tests/guest/lib.sh" opt/kt/lib.sh
add "$ROOT/tests/lib/tap.sh" opt/kt/tap.sh
add "$ART" opt/kt/art
n=0
for c in "${cases[@]}"; do
	n=$((n + 1))
	add "$c" "opt/kt/cases/$(printf %02d $n)-$(basename "$c")"
done
for f in "${files[@]}"; do add "$f" "opt/kt/files/$(basename "$f")"; done
[ -n "$interactive" ] && add "$interactive" opt/kt/interactive
if [ $with_qemu = 1 ]; then
	add_bin "$(command -v "$QEMU")" usr/bin/qemu-system-x86_64
	add /usr/share/qemu usr/share/qemu
	add /usr/share/seabios usr/share/seabios
fi

# Environment the cases see inside L1.
envfile=$RUN/l1-env
{
	echo "export KESTREL=/opt/kt/kestrel KT_GUEST=/opt/kt/guest KT_ART=/opt/kt/art"
	echo "export KT_LIB=/opt/kt/lib.sh KT_TAP=/opt/kt/tap.sh KT_FILES=/opt/kt/files"
	echo "export KT_QEMU=/usr/bin/qemu-system-x86_64 KT_IN_L1=1"
	echo "export KT_TIMEOUT=${KT_TIMEOUT:-180}"
	echo "export KT_QEMU_ARGS='-accel kvm -M pc -nodefaults -no-user-config -display none -serial stdio'"
	for v in KESTREL_LONG KT_REFERENCE KT_FULL_REFERENCE KT_CASE_LIMIT ${KT_PASS_ENV:-}; do
		[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
} >"$envfile.new"
add "$envfile.new" opt/kt/env

# Rebuild only when an input (path, size, time) or the environment changed.
manifest=$RUN/l1-initramfs.manifest
cpio=$RUN/l1-initramfs.cpio
{
	cat "$envfile.new"
	while read -r src dest; do
		find "$src" -printf "%p %s %T@ $dest\n" 2>/dev/null
	done <"$inputs"
} >"$manifest.new"
if [ -f "$cpio" ] && cmp -s "$manifest.new" "$manifest"; then
	rm -f "$manifest.new"
else
	stage=$RUN/l1-root
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,opt/kt/files}
	while read -r src dest; do
		mkdir -p "$(dirname "$stage/$dest")"
		if [ -d "$src" ]; then
			mkdir -p "$stage/$dest"
			cp -a "$src/." "$stage/$dest/"
		else
			cp -L "$src" "$stage/$dest"
		fi
	done <"$inputs"
	for a in $("$stage/bin/busybox" --list); do
		[ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"
	done
	chmod 755 "$stage/init"
	mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
	# Uncompressed: under TCG, decompressing costs L1 more than reading the bytes.
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
		>"$cpio.tmp" && mv "$cpio.tmp" "$cpio"
	rm -rf "$stage"
	mv "$manifest.new" "$manifest"
fi
rm -f "$envfile.new"

# --- boot L1 ------------------------------------------------------------------------------------
qemu_args=(-accel "${KT_L1_ACCEL:-tcg}" -cpu EPYC,+svm -smp "${KT_L1_SMP:-1}" -m 4096
	-no-reboot -display none -monitor none
	-kernel "$GUEST/vmlinuz" -initrd "$cpio" -append "console=ttyS0 quiet panic=-1")
log=$RUN/l1-console.log
if [ -n "$interactive" ]; then
	# The terminal is L1's serial console; Ctrl-C goes to the guest, not to this QEMU.
	"$QEMU" "${qemu_args[@]}" -chardev stdio,id=con,signal=off -serial chardev:con \
		2> >(grep -v "doesn't support requested feature" >&2)
	exit $?
fi

# L1's init prints a heartbeat every 30 s: when the console stays silent for $KT_L1_SILENCE
# seconds, L1's kernel is wedged (not just a slow case, which l1-init's own watchdog handles),
# and waiting for the overall limit would only burn the CI budget.
silence=${KT_L1_SILENCE:-180}
watch_l1() {
	local last=-1 quiet=0 size
	while sleep 10; do
		size=$(stat -c %s "$log" 2>/dev/null || echo 0)
		if [ "$size" = "$last" ]; then quiet=$((quiet + 10)); else quiet=0 last=$size; fi
		if [ $quiet -ge "$silence" ]; then
			echo "$quiet" >"$RUN/l1-silent"
			kill "$(cat "$RUN/qemu.pid")" 2>/dev/null
			return
		fi
	done
}
rm -f "$RUN/l1-silent" "$RUN/qemu.pid"
: >"$log"
watch_l1 &
watcher=$!
t0=$SECONDS
timeout -k 10 "$limit" "$QEMU" "${qemu_args[@]}" -pidfile "$RUN/qemu.pid" -serial stdio \
	</dev/null 2>"$log.err" |
	stdbuf -oL tr -d '\r' >"$log" # line-buffered: the log can be followed live
qrc=${PIPESTATUS[0]}
secs=$((SECONDS - t0))
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
grep -v "doesn't support requested feature" "$log.err" >"$log.err.tmp"
mv "$log.err.tmp" "$log.err"

# --- report -------------------------------------------------------------------------------------
# Logs the cases left in L1 are rebuilt under $RUN/out/<case>/ (same layout as a native run).
rm -rf "$RUN/out"
awk -v dir="$RUN/out" '/^KT-LOG / {
	f = dir "/" $2
	if (!(f in seen)) { seen[f] = 1; d = f; sub(/\/[^\/]*$/, "", d); system("mkdir -p \"" d "\"") }
	sub(/^KT-LOG [^ ]* ?/, ""); print > f }' "$log"
# L1 itself may die under TCG's nested SVM (we have seen its kernel panic on a stack guard
# page in KVM code, and wedge): that says nothing about the cases, so the cases that had not
# finished run again once in a fresh L1 ($KT_L1_RETRY, default 1), saying so. A case that
# keeps killing L1 fails the second time.
retries=${KT_L1_RETRY:-1}
crashed=0
if ! grep -aq '^KT-L1-END status=0' "$log" && ! grep -aq '^KT-L1-NOKVM' "$log" &&
	[ "$secs" -lt "$limit" ] && [ -z "$interactive" ]; then
	crashed=1
fi
finished=" $(grep -a '^KT-CASE-RC ' "$log" | awk '{ printf "%s ", $2 }')"
[ $crashed = 1 ] && [ "$retries" -gt 0 ] && will_retry=1
if [ $will_retry = 1 ]; then
	# Lines of finished cases count; the rest of the dead L1's output becomes diagnostics.
	awk -v fin="$finished" '/^KT-L1-CASE / { cur = $2; next }
		/^KT-OUT / { l = substr($0, 8)
			if (index(fin, " " cur " ")) print l; else print "# (from the L1 that died) " l }' "$log"
else
	sed -n 's/^KT-OUT //p' "$log"
fi
# a case that exited non-zero without saying "not ok" still failed
while read -r _ case rc; do
	if [ "$rc" != 0 ] && ! grep -aq "^KT-OUT not ok - $case" "$log"; then
		echo "not ok - $case: case script exited with status $rc inside L1"
	fi
done < <(grep -a '^KT-CASE-RC ' "$log")

diag() { sed 's/^/# /'; }
if grep -aq '^KT-L1-END status=0' "$log"; then
	echo "# nested L1: all cases ran (L1 up for ${secs}s; console log $log; L2 logs in $RUN/out/)"
	exit 0
fi
if ! grep -aq '^KT-L1-START' "$log"; then
	fail "L1 boot failure: the L1 kernel did not reach its init (qemu status $qrc after ${secs}s)"
	tail -n 20 "$log" | diag
	tail -n 5 "$log.err" | diag
elif grep -aq '^KT-L1-NOKVM' "$log"; then
	fail "/dev/kvm missing in L1: $(sed -n 's/^KT-L1-NOKVM //p' "$log")"
	sed -n 's/^KT-L1-LOG //p' "$log" | diag
else
	last=$(sed -n 's/^KT-L1-CASE //p' "$log" | tail -n 1)
	if [ -f "$RUN/l1-silent" ]; then
		fail "L1 went silent (no heartbeat for $(cat "$RUN/l1-silent")s; its kernel hung) after ${secs}s, in case '$last'"
	elif [ "$secs" -ge "$limit" ]; then
		fail "timed out after ${limit}s, while running case '$last'"
	else
		fail "L1 stopped after ${secs}s (qemu status $qrc) before its end marker, in case '$last'"
		tail -n 5 "$log.err" | diag
	fi
	grep -av '^KT-' "$log" | tail -n 15 | diag
fi
if [ $will_retry = 1 ]; then
	again=()
	for c in "${cases[@]}"; do
		case "$finished" in *" $(basename "$c" .sh) "*) ;; *) again+=("$c") ;; esac
	done
	echo "# nested L1 died: running the ${#again[@]} unfinished case(s) again in a fresh L1" \
		"(the failure above is not counted)"
	fargs=()
	for f in "${files[@]}"; do fargs+=(-f "$f"); done
	[ $with_qemu = 1 ] && fargs+=(-q)
	rm -f "$inputs"
	KT_L1_RETRY=$((retries - 1)) "$0" "${fargs[@]}" -n "$name-retry" "${again[@]}"
	rc=$?
	# The retried cases' logs go where callers look for this run's: $RUN/out/<case>/.
	mkdir -p "$RUN/out"
	cp -a "$NDIR/$name-retry/out/." "$RUN/out/" 2>/dev/null
	exit $rc
fi
exit 1
exit
}
