#!/bin/bash
# Run guest cases (see tests/guest/lib.sh for what a case is) where KVM works, print TAP.
#
#   tests/nested/run-cases.sh [-f SRC]... [-n NAME] CASE.sh...
#     -f SRC   extra file or directory the cases need, found at $KT_FILES/<basename>
#     -n NAME  run name (default: from the case names): logs in $KESTREL_BUILD/nested/NAME/
#
# 1. Each case's "setup" step runs here on the build host (artifacts into $KT_ART).
# 2. Where /dev/kvm opens and the CPU has hardware virtualisation (vmx/svm), the cases run
#    natively. Otherwise they all run in ONE nested L1 boot (tests/nested/l1.sh), and when the
#    host has no qemu-system-x86_64 either, the result is a SKIP with the reason.
#    KESTREL_NESTED=1 forces the nested path, KESTREL_NESTED=0 the native one.
# 3. The cases' unnumbered TAP lines are numbered and closed with the plan line; exit status 1
#    when anything failed.
#
# New test programs (virtio disks, network, QMP...) are a tests/<dir>/test_*.sh that calls this
# with their own case scripts; nothing here needs to change.
set -u
# The body is one { } block, parsed whole before it runs: editing this file while a run is
# under way (a shared tree) cannot change what that run executes.
{
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export KESTREL_BUILD=${KESTREL_BUILD:-$ROOT/build}
export KESTREL=${KESTREL:-$KESTREL_BUILD/kestrel}
export KT_ROOT=$ROOT
export KT_ART=$KESTREL_BUILD/nested/art
# The guest does not depend on the build flavour: build-asan runs use build/guest if need be.
if [ -z "${KT_GUEST_DIR:-}" ]; then
	KT_GUEST_DIR=$KESTREL_BUILD/guest
	[ -f "$KT_GUEST_DIR/initramfs.cpio.gz" ] || KT_GUEST_DIR=$ROOT/build/guest
fi
export KT_GUEST_DIR

files=() name=""
while getopts "f:n:" opt; do
	case $opt in
	f) files+=("$OPTARG") ;;
	n) name=$OPTARG ;;
	*) echo "usage: $0 [-f SRC]... [-n NAME] CASE.sh..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cases=("$@")
if [ -z "$name" ]; then
	name=$(for c in "${cases[@]}"; do basename "$c" .sh; done | tr '\n' '+')
	name=${name%+}
	[ ${#name} -le 40 ] || name=cases-$(echo "$name" | md5sum | cut -c1-8)
fi
NDIR=$KESTREL_BUILD/nested/$name

# Number the TAP lines from stdin, print the plan, exit 1 on any failure.
number() {
	awk '
		/^ok( |$)/ { n++; sub(/^ok( - )?/, ""); print "ok " n " - " $0; next }
		/^not ok( |$)/ { n++; bad = 1; sub(/^not ok( - )?/, ""); print "not ok " n " - " $0; next }
		{ print }
		END { if (n == 0) { n = 1; bad = 1; print "not ok 1 - guest cases printed no result" }
		      print "1.." n; exit bad }'
}

kvm_works() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	# Opening is not enough: a software-only /dev/kvm (e.g. PVM) cannot run a stock kernel.
	grep -qw -e vmx -e svm /proc/cpuinfo
}

mode=${KESTREL_NESTED:-auto}
if [ "$mode" = auto ]; then
	if kvm_works; then mode=0; else mode=1; fi
fi

run_all() {
	local c rc
	mkdir -p "$KT_ART"
	local guest=$KT_GUEST_DIR
	if [ ! -f "$guest/initramfs.cpio.gz" ] || [ ! -x "$KESTREL" ]; then
		echo "not ok - guest cases: $KESTREL or $guest/ missing (make; scripts/make-guest.sh $guest)"
		return
	fi
	for c in "${cases[@]}"; do
		if ! KT_LIB=$ROOT/tests/guest/lib.sh sh "$c" setup >"$NDIR/setup.log" 2>&1; then
			echo "not ok - $(basename "$c" .sh): setup on the build host failed"
			sed 's/^/# /' "$NDIR/setup.log"
		fi
	done
	if [ "$mode" = 0 ]; then
		echo "# running ${#cases[@]} guest case(s) natively on /dev/kvm"
		exec 9>"$NDIR/.lock"
		flock -n 9 || { echo "# another run named '$name' is on: waiting for it"; flock 9; }
		rm -rf "$NDIR/out"
		export KT_GUEST=$KT_GUEST_DIR
		export KT_LIB=$ROOT/tests/guest/lib.sh KT_TAP=$ROOT/tests/lib/tap.sh
		export KT_FILES=$NDIR/files
		export KT_QEMU_ARGS=${KT_QEMU_ARGS:--accel kvm -M pc -nodefaults -no-user-config -display none -serial stdio}
		rm -rf "$KT_FILES"
		mkdir -p "$KT_FILES"
		for f in "${files[@]}"; do ln -s "$(realpath "$f")" "$KT_FILES/$(basename "$f")"; done
		for c in "${cases[@]}"; do
			export KT_OUT=$NDIR/out/$(basename "$c" .sh)
			mkdir -p "$KT_OUT"
			sh "$c" run 2>&1
			rc=$?
			[ $rc -eq 0 ] || echo "not ok - $(basename "$c" .sh): case script exited with status $rc"
		done
		return
	fi
	if ! command -v "${KT_HOST_QEMU:-qemu-system-x86_64}" >/dev/null; then
		echo "ok - guest cases # SKIP no usable /dev/kvm here and qemu-system-x86_64 is not installed for nested KVM"
		return
	fi
	echo "# no usable /dev/kvm on this host: running ${#cases[@]} guest case(s) in a nested L1 guest (TCG + SVM)"
	local fargs=()
	for f in "${files[@]}"; do fargs+=(-f "$f"); done
	"$ROOT/tests/nested/l1.sh" -n "$name" "${fargs[@]}" "${cases[@]}"
}

mkdir -p "$NDIR"
run_all | number
exit
}
