#!/bin/bash
# kestrel img convert: progress output on a pseudo-terminal (bar with percentage, rate and
# ETA) and as plain percentage lines when stdout is not a terminal; sparse output (zero
# clusters and zero runs >= -S are skipped); -c compression; a mostly-zero 10 GiB image
# converts in seconds.
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
T=$(mktemp -d /tmp/kestrel-convert.XXXXXX)
trap 'rm -rf "$T"' EXIT
# a private copy: a rebuild of the tree during the test must not pull the binary away
cp "$KESTREL" "$T/kestrel" && K=$T/kestrel
cd "$T" || exit 1

$K img create -f raw src.raw 64M >/dev/null
# 8 MiB of incompressible data, 4 MiB of a repeated pattern, zeros elsewhere
head -c 8M /dev/urandom | dd of=src.raw conv=notrunc status=none
yes kestrel | head -c 4M | dd of=src.raw bs=1M seek=20 conv=notrunc status=none

# progress on a pty: python's pty module gives the command a terminal
python3 - "$K" <<'PY' >pty.out 2>&1
import os, pty, sys
k = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(k, [k, "img", "convert", "-p", "-O", "qcow2", "src.raw", "pty.qcow2"])
out = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(st))
PY
rc=$?
tap_check "convert -p on a terminal exits 0" test $rc -eq 0
tap_check "terminal progress redraws one line with \\r and ends at 100%" \
	bash -c "grep -q \$'\r' pty.out && tr '\r' '\n' <pty.out | grep -q '100.00%'"
tap_check "terminal progress shows a rate and an ETA" \
	bash -c "tr '\r' '\n' <pty.out | grep -E '/s +ETA [0-9]{2}:[0-9]{2}' -q"
$K img convert -p -O qcow2 src.raw pipe.qcow2 >pipe.out 2>&1
tap_check "convert -p into a pipe prints plain percentage lines" \
	bash -c "! grep -q \$'\r' pipe.out && grep -qx '100%' pipe.out && grep -qx '0%' pipe.out"
tap_check "convert without -p prints nothing" bash -c "$K img convert -O raw src.raw quiet.raw | wc -c | grep -qx 0"

if command -v qemu-img >/dev/null; then
	tap_check "converted qcow2 equals the source (qemu-img compare)" qemu-img compare -q src.raw pty.qcow2
else
	tap_check "converted qcow2 equals the source" bash -c "$K img convert -O raw pty.qcow2 back.raw && cmp -s src.raw back.raw"
fi
alloc() { du -k "$1" | cut -f1; }
tap_check "qcow2 output is sparse ($(alloc pipe.qcow2) KiB for 12 MiB of data)" test "$(alloc pipe.qcow2)" -lt 14000
$K img convert -O raw src.raw sparse.raw
tap_check "raw output is sparse ($(alloc sparse.raw) KiB)" test "$(alloc sparse.raw)" -lt 14000
tap_check "raw output equals the source" cmp -s src.raw sparse.raw
$K img convert -c -O qcow2 src.raw comp.qcow2
tap_check "-c compresses ($(stat -c %s comp.qcow2) bytes vs $(stat -c %s pipe.qcow2))" \
	test "$(stat -c %s comp.qcow2)" -lt "$(($(stat -c %s pipe.qcow2) - 3000000))"
tap_check "-c output reads back equal" bash -c "$K img convert -O raw comp.qcow2 c.raw && cmp -s src.raw c.raw"
# -S: with -S 64k a 4 KiB zero run inside data is written, with -S 4k it is skipped
head -c 1M /dev/urandom >s.raw; dd if=/dev/zero of=s.raw bs=4k seek=100 count=1 conv=notrunc status=none
$K img convert -S 4k -O raw s.raw s4k.raw; $K img convert -S 1M -O raw s.raw s1m.raw
tap_check "-S 4k leaves a hole for a 4 KiB zero run, -S 1M does not" \
	bash -c "test \$(du -k s4k.raw | cut -f1) -lt \$(du -k s1m.raw | cut -f1) && cmp -s s.raw s4k.raw"

# -c works in whole output clusters: a cluster is data if any part of it is (issue 6 audit)
same() { qemu-img compare -q "$1" "$2" && qemu-img check -q "$2"; }
if command -v qemu-img >/dev/null; then
	truncate -s 1M x4k.raw   # sparse raw with 4 KiB data extents, one at offset 0
	printf 'head' | dd of=x4k.raw conv=notrunc status=none
	printf 'mid' | dd of=x4k.raw bs=4k seek=17 conv=notrunc status=none
	printf 'end' | dd of=x4k.raw bs=4k seek=255 conv=notrunc status=none
	tap_check "-c of a sparse raw with 4 KiB data extents" \
		bash -c "$K img convert -c -O qcow2 x4k.raw x4k.qcow2 && $(declare -f same); same x4k.raw x4k.qcow2"
	qemu-img create -q -f qcow2 -o cluster_size=4k q4k.qcow2 1M
	qemu-io -c 'write -P 7 0 4k' -c 'write -P 9 100k 4k' -c 'write -P 3 1020k 4k' q4k.qcow2 >/dev/null
	tap_check "-c of a 4 KiB-cluster qemu image into 64 KiB clusters" \
		bash -c "$K img convert -c -O qcow2 q4k.qcow2 q64.qcow2 && $(declare -f same); same q4k.qcow2 q64.qcow2"
	head -c 200704 /dev/urandom >tail.raw   # 3 clusters and a 4 KiB tail
	tap_check "-c pads the partial tail cluster" \
		bash -c "$K img convert -c -O qcow2 tail.raw tail.qcow2 && $(declare -f same); same tail.raw tail.qcow2"
else
	tap_skip "-c with 4 KiB extents" "no qemu-img"
fi

# a mostly-zero 10 GiB image converts in seconds
$K img create -f qcow2 big.qcow2 10G >/dev/null
t0=$(date +%s.%N)
$K img convert -O qcow2 big.qcow2 big2.qcow2
t1=$(date +%s.%N)
$K img create -f raw bigsrc.raw 10G >/dev/null; head -c 16M /dev/urandom | dd of=bigsrc.raw bs=1M seek=5000 conv=notrunc status=none
t2=$(date +%s.%N)
$K img convert -O qcow2 bigsrc.raw bigsrc.qcow2
t3=$(date +%s.%N)
s1=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }"); s2=$(awk "BEGIN { printf \"%.2f\", $t3 - $t2 }")
echo "# convert 10 GiB empty qcow2 -> qcow2: ${s1}s; 10 GiB sparse raw (16 MiB data) -> qcow2: ${s2}s"
tap_check "10 GiB empty qcow2 converts in under 10 s (${s1}s)" awk "BEGIN { exit !($s1 < 10) }"
tap_check "10 GiB sparse raw with 16 MiB data converts in under 10 s (${s2}s)" awk "BEGIN { exit !($s2 < 10) }"
tap_check "the 10 GiB result is small ($(alloc bigsrc.qcow2) KiB)" test "$(alloc bigsrc.qcow2)" -lt 20000
tap_done
