#!/bin/bash
# Bad images through the command line: each is refused with one clear message naming the
# problem and exit code 1 (check: 2 for corruption), never a crash. The same cases are
# unit-tested in tests/unit/test_qcow2.c; this checks what a user sees.
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
T=$(mktemp -d /tmp/kestrel-badimg.XXXXXX)
trap 'rm -rf "$T"' EXIT
# a private copy: a rebuild of the tree during the test must not pull the binary away
cp "$KESTREL" "$T/kestrel" && K=$T/kestrel
cd "$T" || exit 1

# patch FILE OFFSET FORMAT VALUE (python struct format, big endian)
patch() { python3 -c "
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2], 0)); f.write(struct.pack('>' + sys.argv[3], int(sys.argv[4], 0) & (2**64 - 1)))
" "$@"; }
get() { python3 -c "
import struct, sys
f = open(sys.argv[1], 'rb'); f.seek(int(sys.argv[2], 0)); print(struct.unpack('>Q', f.read(8))[0])
" "$@"; }
fresh() { $K img create -f qcow2 "$1" 1M >/dev/null; }
# refused CMD... MESSAGE: exit 1 and the message on stderr
refused() {
	local msg=${*: -1}
	"${@:1:$#-1}" >out 2>err
	local rc=$?
	[ $rc -eq 1 ] && grep -q -- "$msg" err || { echo "# rc=$rc: $(cat err)"; return 1; }
}

fresh t.qcow2; truncate -s 40 t.qcow2
tap_check "truncated file" refused $K img info t.qcow2 "truncated image"
fresh s.qcow2; patch s.qcow2 24 Q 0x4000000000000000
tap_check "absurd virtual size" refused $K img info s.qcow2 "absurd virtual size"
fresh l.qcow2; patch l.qcow2 40 Q 0x10000000000
tap_check "L1 table outside the file" refused $K img info l.qcow2 "L1 table (offset 0x10000000000, 1 entries) is outside the image"
fresh r.qcow2; patch r.qcow2 "$(get r.qcow2 48)" Q 0x20000000000
tap_check "refcount block outside the file" refused $K img info r.qcow2 "refcount block 0 at offset 0x20000000000 is outside the image file"
fresh o.qcow2; patch o.qcow2 "$(get o.qcow2 40)" Q "$(( $(get o.qcow2 48) | (1 << 63) ))"
tap_check "L2 table overlapping the refcount table" refused $K img info o.qcow2 "L2 table of L1 entry 0 at offset 0x10000 overlaps the refcount table"
fresh f.qcow2; patch f.qcow2 72 Q 0x400
tap_check "unknown incompatible feature" refused $K img info f.qcow2 "unsupported incompatible qcow2 feature(s): bit 10"
qemu-img create -q -f qcow2 -o data_file=f.data fx.qcow2 1M 2>/dev/null && \
	tap_check "external data file (made by qemu)" refused $K img info fx.qcow2 "external data file" ||
	tap_skip "external data file" "qemu-img cannot create one here"
qemu-img create -q -f qcow2 -o extended_l2=on x.qcow2 1M 2>/dev/null && \
	tap_check "extended L2 (made by qemu)" refused $K img info x.qcow2 "extended L2" ||
	tap_skip "extended L2" "qemu-img cannot create one here"

# backing loops: a -> b -> a
$K img create -f qcow2 b.qcow2 1M >/dev/null
$K img create -f qcow2 -b b.qcow2 -F qcow2 a.qcow2 >/dev/null
$K img rebase -u -b a.qcow2 -F qcow2 b.qcow2
tap_check "backing file loop (--backing-chain)" refused $K img info --backing-chain a.qcow2 "backing file loop"
tap_check "backing file loop (convert)" refused $K img convert -O raw a.qcow2 out.raw "backing file loop"
tap_check "info without --backing-chain warns and shows the image" \
	bash -c "$K img info a.qcow2 2>err | grep -q '^image: a.qcow2' && grep -q 'warning: backing chain: .*backing file loop' err"

# a data cluster pointing outside the file: reads fail with a message, check says corrupt
$K img create -f qcow2 d.qcow2 1M >/dev/null
python3 - d.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(72)
l1 = struct.unpack('>Q', h[40:48])[0]
# hand-made L2 table in a new cluster at the end of the file
f.seek(0, 2); end = f.tell(); cs = 65536
l2 = (end + cs - 1) // cs * cs
f.seek(l2); f.write(struct.pack('>Q', (1 << 63) | (1 << 40)) + bytes(cs - 8))
f.seek(l1); f.write(struct.pack('>Q', (1 << 63) | l2))
PY
tap_check "read through an L2 entry outside the file" refused $K img convert -O raw d.qcow2 d.raw "data cluster (L2 table 0x40000 entry 0) at offset 0x10000000000 is outside the image file"
$K img check d.qcow2 >out 2>err
rc=$?
tap_check "check reports the corruption (exit 2, got $rc)" test $rc -eq 2
if command -v qemu-img >/dev/null; then
	qemu-img check d.qcow2 >/dev/null 2>&1
	rc=$?
	tap_check "qemu-img agrees it is corrupt (exit 2, got $rc)" test $rc -eq 2
fi
tap_check "nothing was written past the end of the bad images" test "$(stat -c %s d.qcow2)" -lt 400000
# a refcount that is too low (a used cluster marked free): an error; -r all repairs it
$K img create -f qcow2 z.qcow2 1M >/dev/null
head -c 65536 /dev/urandom >z.raw
$K img convert -O qcow2 z.raw z.qcow2
python3 - z.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(72)
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
f.seek(0, 2); last = f.tell() // 65536 - 1   # the data cluster is the last one
f.seek(rb + 2 * last); f.write(struct.pack('>H', 0))
PY
$K img check z.qcow2 >/dev/null 2>&1
rc=$?
tap_check "refcount too low is an error (exit 2, got $rc)" test $rc -eq 2
$K img check -r all z.qcow2 >out 2>&1
rc=$?
tap_check "check -r all repairs it (exit 0, got $rc)" bash -c "[ $rc -eq 0 ] && grep -q 'The following inconsistencies were found and repaired' out"
if command -v qemu-img >/dev/null; then
	tap_check "qemu-img check agrees after the repair" qemu-img check -q z.qcow2
	tap_check "data intact after the repair" qemu-img compare -q z.raw z.qcow2
fi
# an L2 entry pointing at its own L2 table (issue 6 audit): a write through it would clobber
# the table; it is refused and the image is marked corrupt, as qemu does
$K img create -f qcow2 self.qcow2 1M >/dev/null
head -c 65536 /dev/urandom >self.raw
$K img convert -O qcow2 self.raw self.qcow2
l2=$(( $(get self.qcow2 "$(get self.qcow2 40)") & 0x00fffffffffffe00 ))
patch self.qcow2 "$l2" Q $(( l2 | (1 << 63) ))
sum0=$(dd if=self.qcow2 bs=64k skip=$((l2 / 65536)) count=1 status=none | md5sum)
tap_check "write through an L2 entry pointing at its own L2 table is refused" \
	refused $K img bench -w -c 1 -s 64k self.qcow2 "overlaps an active L2 table"
tap_check "the L2 table is intact" \
	test "$(dd if=self.qcow2 bs=64k skip=$((l2 / 65536)) count=1 status=none | md5sum)" = "$sum0"
tap_check "the image is marked corrupt (kestrel img info)" \
	bash -c "$K img info self.qcow2 | grep -q 'corrupt: true'"
tap_check "a marked image refuses read-write opens" \
	refused $K img bench -w -c 1 -s 64k self.qcow2 "marked corrupt"
if command -v qemu-img >/dev/null; then
	tap_check "qemu-img sees the corrupt flag" \
		bash -c "qemu-img info --output json self.qcow2 | grep -q '\"corrupt\": true'"
fi
$K img check self.qcow2 >/dev/null 2>&1
rc=$?
tap_check "check reports the overlap as corruption (exit 2, got $rc)" test $rc -eq 2
# refcounts that call the L2 table free: the allocator must not hand it out
$K img convert -O qcow2 self.raw free.qcow2
l2=$(( $(get free.qcow2 "$(get free.qcow2 40)") & 0x00fffffffffffe00 ))
rb=$(get free.qcow2 "$(get free.qcow2 48)")
patch free.qcow2 $((rb + 2 * (l2 / 65536))) H 0
tap_check "an allocation onto an L2 table whose refcount is 0 is refused" \
	bash -c "$K img resize free.qcow2 1M >/dev/null; $K img bench -w -c 2 -s 64k free.qcow2 2>&1 | grep -q 'newly allocated cluster .* overlaps an active L2 table'"
$K img check -r all free.qcow2 >out 2>&1
rc=$?
tap_check "check -r all repairs it and clears the corrupt flag (exit 0, got $rc)" \
	bash -c "[ $rc -eq 0 ] && $K img info free.qcow2 | grep -q 'corrupt: false'"
if command -v qemu-img >/dev/null; then
	tap_check "after the repair qemu-img check agrees and writes work again" \
		bash -c "qemu-img check -q free.qcow2 && $K img bench -w -c 16 -s 64k free.qcow2 >/dev/null && qemu-img check -q free.qcow2"
fi
# img check opens images whose tables a normal open refuses, reports each problem as an
# ERROR line with the count (exit 2, as qemu-img check), and -r all repairs what it can:
# refcount blocks (rebuilt past the end of the file), not pointers into nowhere.
head -c 65536 /dev/zero | tr '\0' '\5' >five.raw
mk5() { $K img convert -O qcow2 five.raw "$1" && $K img resize "$1" 1M >/dev/null; }
mk5 c-rbout.qcow2; patch c-rbout.qcow2 "$(get c-rbout.qcow2 48)" Q 0x20000000000
mk5 c-rbalign.qcow2; patch c-rbalign.qcow2 "$(get c-rbalign.qcow2 48)" Q 0x20200
mk5 c-rbdup.qcow2; patch c-rbdup.qcow2 "$(( $(get c-rbdup.qcow2 48) + 8 ))" Q "$(get c-rbdup.qcow2 "$(get c-rbdup.qcow2 48)")"
mk5 c-l2rt.qcow2; patch c-l2rt.qcow2 "$(get c-l2rt.qcow2 40)" Q "$(( $(get c-l2rt.qcow2 48) | (1 << 63) ))"
mk5 c-l1out.qcow2; patch c-l1out.qcow2 40 Q 0x10000000000
# checked CASE MESSAGE: exit 2, the ERROR line, a count; qemu-img check is not clean either
checked() {
	$K img check "$1" >out 2>err
	local rc=$?
	qemu-img check "$1" >/dev/null 2>&1
	local qrc=$?
	[ $rc -eq 2 ] && [ $qrc -ne 0 ] && grep -q "^ERROR.*$2" err &&
		grep -qE '^[0-9]+ errors were found on the image' out ||
		{ echo "# rc=$rc qemu=$qrc: $(head -c 300 err)"; return 1; }
}
if command -v qemu-img >/dev/null; then
	tap_check "check: refcount block outside the file" checked c-rbout.qcow2 "refcount block 0 at offset 0x20000000000 is outside the image file"
	tap_check "check: refcount block not aligned" checked c-rbalign.qcow2 "refcount block 0 at offset 0x20200 is not cluster aligned"
	tap_check "check: two entries share a refcount block" checked c-rbdup.qcow2 "refcount block 1 at offset 0x20000 is also another entry's refcount block"
	tap_check "check: L2 table over the refcount table" checked c-l2rt.qcow2 "L2 table at offset 0x10000 overlaps the refcount table"
	tap_check "check: L1 table outside the file" checked c-l1out.qcow2 "L1 table (offset 0x10000000000, 1 entries) is outside the image file"
	$K img check --output json c-rbout.qcow2 >out.json 2>/dev/null
	tap_check "check --output json counts them (8 corruptions, like qemu-img)" \
		python3 -c "import json; d = json.load(open('out.json')); assert d['corruptions'] == 8, d"
	for c in rbout rbalign rbdup; do
		$K img check -r all c-$c.qcow2 >out 2>&1
		rc=$?
		tap_check "check -r all rebuilds the refcounts ($c): exit 0 (got $rc), qemu-img check clean, data intact" \
			bash -c "[ $rc -eq 0 ] && qemu-img check -q c-$c.qcow2 && $K img resize --shrink c-$c.qcow2 64k >/dev/null && qemu-img compare -q five.raw c-$c.qcow2"
	done
	for c in l2rt l1out; do
		$K img check -r all c-$c.qcow2 >out 2>&1
		rc=$?
		tap_check "check -r all says what it cannot repair ($c, exit 2, got $rc)" \
			bash -c "[ $rc -eq 2 ] && grep -q 'cannot be repaired by -r all' out"
	done
else
	tap_skip "check of overlapping / out-of-file tables" "no qemu-img"
fi
tap_done
