#!/bin/bash
# qcow2 interoperability with qemu-img, both ways: images qemu makes (cluster sizes 4 KiB to
# 2 MiB, compressed zlib/zstd, backing files, internal snapshots, zero clusters, v2) read
# identically through kestrel; images kestrel writes pass `qemu-img check` and
# `qemu-img compare` equals the source. Also info/map/resize/commit/rebase against qemu.
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
	tap_skip "qcow2 interop" "qemu-img/qemu-io not installed (scripts/deps.sh installs qemu-utils)"
	tap_done
fi
T=$(mktemp -d /tmp/kestrel-interop.XXXXXX)
trap 'rm -rf "$T"' EXIT
# a private copy: a rebuild of the tree during the test must not pull the binary away
cp "$KESTREL" "$T/kestrel" && K=$T/kestrel
cd "$T" || exit 1

qio() { qemu-io -f qcow2 "$@" >/dev/null; }
# same content: kestrel reads IMG as raw, qemu compares with the original
reads_same() { # img
	$K img convert -O raw "$1" "$1.k.raw" && qemu-img compare -q "$1" "$1.k.raw"
}
# kestrel converts to qcow2 (extra args), qemu checks it and compares with the source
writes_clean() { # src dst [convert args...]
	local src=$1 dst=$2
	shift 2
	$K img convert -O qcow2 "$@" "$src" "$dst" && qemu-img check -q "$dst" &&
		qemu-img compare -q "$src" "$dst"
}
fill() { # img: data, zero clusters and a hole
	qio -c "write -P 0x11 0 1M" -c "write -P 0x22 3M 100k" -c "write -z 5M 512k" \
		-c "write -P 0x33 7M 4k" -c "write -P 0x44 12345 678" "$1"
}

for cs in 4k 64k 2M; do
	qemu-img create -q -f qcow2 -o cluster_size=$cs q-$cs.qcow2 16M
	fill q-$cs.qcow2
	tap_check "read qemu image, cluster_size=$cs" reads_same q-$cs.qcow2
	tap_check "write image, cluster_size=$cs, passes qemu-img check+compare" \
		writes_clean q-$cs.qcow2 k-$cs.qcow2 -o cluster_size=$cs
	for ct in zlib zstd; do
		qemu-img convert -c -O qcow2 -o cluster_size=$cs,compression_type=$ct \
			q-$cs.qcow2 c-$cs-$ct.qcow2
		tap_check "read qemu-compressed ($ct, $cs)" reads_same c-$cs-$ct.qcow2
		tap_check "write compressed ($ct, $cs), qemu-img check+compare" \
			writes_clean q-$cs.qcow2 kc-$cs-$ct.qcow2 -c -o cluster_size=$cs,compression_type=$ct
	done
done

# version 2 images and 512-byte clusters, 1-bit and 64-bit refcounts
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M && fill v2.qcow2
tap_check "read qemu v2 (compat=0.10) image" reads_same v2.qcow2
tap_check "write v2 image (compat=0.10)" writes_clean v2.qcow2 kv2.qcow2 -o compat=0.10
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 r1.qcow2 4M &&
	qio -c "write -P 9 0 300k" -c "write -P 8 2M 5000" r1.qcow2
tap_check "read 512-byte clusters, refcount_bits=1" reads_same r1.qcow2
tap_check "write refcount_bits=64" writes_clean r1.qcow2 k64.qcow2 -o refcount_bits=64

# backing chains
qemu-img create -q -f qcow2 base.qcow2 16M && qio -c "write -P 0x55 0 8M" base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 &&
	qio -c "write -P 0x66 1M 1M" -c "write -z 2M 64k" -c "discard 4M 1M" mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 && qio -c "write -P 0x77 1500k 10k" top.qcow2
tap_check "read a 3-image backing chain" reads_same top.qcow2
tap_check "info shows the backing chain" bash -c "$K img info top.qcow2 | grep -q 'backing chain: .*mid.qcow2 (qcow2) .*base.qcow2 (qcow2)'"
tap_check "info --output json has backing-filename" bash -c "$K img info --output json top.qcow2 | grep -q '\"backing-filename\": \"mid.qcow2\"'"
$K img create -q -f qcow2 -b top.qcow2 -F qcow2 ktop.qcow2 >/dev/null 2>&1 ||
	$K img create -f qcow2 -b top.qcow2 -F qcow2 ktop.qcow2 >/dev/null
tap_check "kestrel overlay on a qemu chain passes qemu-img check" qemu-img check -q ktop.qcow2
tap_check "qemu reads kestrel overlay like the chain" qemu-img compare -q ktop.qcow2 top.qcow2
# map agrees with qemu on what is data and what is zero
map_cmp() {
	$K img map --output json top.qcow2 | tr -d ' \n' | grep -o '"start":[0-9]*,"length":[0-9]*,"depth":[0-9]*,"present":[a-z]*,"zero":[a-z]*,"data":[a-z]*' >k.map
	qemu-img map --output json top.qcow2 | tr -d ' \n' | grep -o '"start":[0-9]*,"length":[0-9]*,"depth":[0-9]*,"present":[a-z]*,"zero":[a-z]*,"data":[a-z]*' >q.map
	diff k.map q.map >/dev/null
}
tap_check "map --output json matches qemu-img map (start,length,depth,present,zero,data)" map_cmp

# commit: top's data into mid, top emptied
cp top.qcow2 ctop.qcow2; cp mid.qcow2 cmid.qcow2; cp base.qcow2 cbase.qcow2
qemu-img rebase -u -b cmid.qcow2 -F qcow2 ctop.qcow2
qemu-img rebase -u -b cbase.qcow2 -F qcow2 cmid.qcow2
qemu-img convert -O raw ctop.qcow2 before.raw
tap_check "commit" $K img commit ctop.qcow2
tap_check "after commit: qemu-img check of both images" bash -c "qemu-img check -q ctop.qcow2 && qemu-img check -q cmid.qcow2"
tap_check "after commit: content unchanged" qemu-img compare -q ctop.qcow2 before.raw
tap_check "after commit: mid has top's data" qemu-img compare -q cmid.qcow2 before.raw

# rebase: safe rebase of top onto base keeps the content
cp top.qcow2 rtop.qcow2
tap_check "rebase (safe) onto base" $K img rebase -b base.qcow2 -F qcow2 rtop.qcow2
tap_check "after rebase: qemu sees the same disk" qemu-img compare -q rtop.qcow2 top.qcow2
tap_check "after rebase: backing file is base" bash -c "qemu-img info rtop.qcow2 | grep -q '^backing file: base.qcow2'"
tap_check "rebase -u changes only the header" bash -c "$K img rebase -u -b mid.qcow2 -F qcow2 rtop.qcow2 && qemu-img info rtop.qcow2 | grep -q '^backing file: mid.qcow2' && qemu-img check -q rtop.qcow2"

# internal snapshots made by qemu; kestrel creates/applies/deletes and qemu checks
qemu-img create -q -f qcow2 s.qcow2 16M && qio -c "write -P 1 0 2M" s.qcow2
qemu-img snapshot -c first s.qcow2 && qio -c "write -P 2 1M 2M" s.qcow2
qemu-img convert -O raw s.qcow2 s-now.raw
qemu-img convert -O raw -l snapshot.name=first s.qcow2 s-first.raw
tap_check "snapshot -l lists qemu's snapshot" bash -c "$K img snapshot -l s.qcow2 | grep -q first"
tap_check "read active image with internal snapshots" reads_same s.qcow2
tap_check "snapshot -c, qemu-img check" bash -c "$K img snapshot -c second s.qcow2 && qemu-img check -q s.qcow2 && qemu-img snapshot -l s.qcow2 | grep -q second"
tap_check "qemu reads kestrel's snapshot" bash -c "qemu-img convert -O raw -l snapshot.name=second s.qcow2 s-second.raw && cmp -s s-second.raw s-now.raw"
tap_check "snapshot -a first" bash -c "$K img snapshot -a first s.qcow2 && qemu-img check -q s.qcow2 && qemu-img compare -q s.qcow2 s-first.raw"
tap_check "snapshot -d first, qemu-img check" bash -c "$K img snapshot -d first s.qcow2 && qemu-img check -q s.qcow2 && ! qemu-img snapshot -l s.qcow2 | grep -q first"
tap_check "snapshot -a second after delete" bash -c "$K img snapshot -a second s.qcow2 && qemu-img check -q s.qcow2 && qemu-img compare -q s.qcow2 s-now.raw"

# resize grow/shrink, checked by qemu
cp q-64k.qcow2 rs.qcow2
tap_check "resize +1G" bash -c "$K img resize rs.qcow2 +1G >/dev/null && qemu-img check -q rs.qcow2 && qemu-img info rs.qcow2 | grep -q '(1090519040 bytes)'"
tap_check "resize past L1 capacity (4 KiB clusters, 16M -> 8G)" bash -c "cp q-4k.qcow2 rs4.qcow2 && $K img resize rs4.qcow2 8G >/dev/null && qemu-img check -q rs4.qcow2 && qemu-img compare -q q-4k.qcow2 rs4.qcow2 2>/dev/null; qemu-img info rs4.qcow2 | grep -q '8 GiB'"
tap_check "resize refuses to shrink without --shrink" bash -c "! $K img resize rs.qcow2 8M 2>/dev/null"
tap_check "resize --shrink" bash -c "$K img resize --shrink rs.qcow2 2M >/dev/null && qemu-img check -q rs.qcow2 && qemu-img info rs.qcow2 | grep -q '(2097152 bytes)'"

# kestrel create is accepted by qemu with each option
tap_check "create with all options, qemu-img check" bash -c "$K img create -f qcow2 -o cluster_size=4k,compression_type=zstd,refcount_bits=8,lazy_refcounts=on o.qcow2 3G >/dev/null && qemu-img check -q o.qcow2 && qemu-img info o.qcow2 | grep -q 'compression type: zstd'"

# kestrel writing over clusters a qemu snapshot shares (copy-on-write): commit into a base
# image that has an internal snapshot; the snapshot must keep the old data
qemu-img create -q -f qcow2 cb.qcow2 16M && qio -c "write -P 0x10 0 4M" cb.qcow2
qemu-img snapshot -c old cb.qcow2
qemu-img convert -O raw cb.qcow2 cb-old.raw
qemu-img create -q -f qcow2 -b cb.qcow2 -F qcow2 ct.qcow2 && qio -c "write -P 0x20 1M 2M" -c "write -P 0x21 100k 5k" ct.qcow2
qemu-img convert -O raw ct.qcow2 ct-new.raw
tap_check "commit over snapshot-shared clusters" $K img commit ct.qcow2
tap_check "qemu-img check after copy-on-write of shared clusters" qemu-img check -q cb.qcow2
tap_check "base now has the committed data" qemu-img compare -q cb.qcow2 ct-new.raw
tap_check "the snapshot still has the old data" bash -c "qemu-img convert -O raw -l snapshot.name=old cb.qcow2 cb-snap.raw && cmp -s cb-snap.raw cb-old.raw"

# lazy refcounts: qemu-io "abort" leaves a dirty image with stale refcounts; kestrel reads
# it read-only as it is, and a read-write open repairs it (dirty bit cleared)
qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 16M
(qemu-io -c "write -P 0x3c 0 2M" -c "write -P 0x3d 5M 100k" -c abort lazy.qcow2 >/dev/null 2>&1) 2>/dev/null
tap_check "qemu left the lazy-refcount image dirty" bash -c "$K img info lazy.qcow2 | grep -q 'dirty: true'"
tap_check "dirty lazy-refcount image reads correctly" bash -c "$K img convert -O raw lazy.qcow2 lazy.raw && qemu-io -f raw -c 'read -P 0x3c 0 2M' -c 'read -P 0x3d 5M 100k' lazy.raw | grep -vq Pattern"
tap_check "read-write open repairs it: clean and not dirty" bash -c "$K img resize lazy.qcow2 +0 >/dev/null && qemu-img check -q lazy.qcow2 && $K img info lazy.qcow2 | grep -q 'dirty: false' && qemu-img compare -q lazy.qcow2 lazy.raw"

# check finds what qemu finds: leaks are leaks
cp q-64k.qcow2 leak.qcow2
qemu-io -c "write -P 1 0 64k" leak.qcow2 >/dev/null
# add_leak IMG: a leaked cluster, by bumping the refcount of the cluster past the end
add_leak() {
	python3 - "$1" <<'EOF'
import struct, sys, os
f = open(sys.argv[1], 'r+b')
h = f.read(104)
cs = 1 << struct.unpack('>I', h[20:24])[0]
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
n = os.path.getsize(sys.argv[1]) // cs
f.seek(rb + 2 * n); f.write(struct.pack('>H', 1))
f.truncate((n + 1) * cs)
EOF
}
add_leak leak.qcow2
$K img check leak.qcow2 >/dev/null 2>&1
rc=$?
tap_check "check reports a leak with exit code 3 (got $rc)" test $rc -eq 3
tap_check "check -r leaks repairs it (qemu agrees)" bash -c "$K img check -r leaks leak.qcow2 >/dev/null 2>&1 && qemu-img check -q leak.qcow2"

# sizes that are not a multiple of 512 are rounded up as qemu-img does (issue 6 audit)
$K img create -f qcow2 odd.qcow2 100000 >/dev/null
qemu-img create -q -f qcow2 oddq.qcow2 100000
tap_check "create -f qcow2 100000 stores 100352, as qemu-img" \
	bash -c "qemu-img info --output json odd.qcow2 | grep -q '\"virtual-size\": 100352' && qemu-img compare -q odd.qcow2 oddq.qcow2"
$K img create -f raw odd.raw 100000 >/dev/null
tap_check "create -f raw 100000 makes a 100352-byte file, as qemu-img" test "$(stat -c %s odd.raw)" -eq 100352
head -c 100000 /dev/urandom >odd-src.raw
tap_check "convert of a 100000-byte raw: qemu-img compare equals" writes_clean odd-src.raw odd-c.qcow2
tap_check "convert -c of a 100000-byte raw: qemu-img compare equals" writes_clean odd-src.raw odd-cc.qcow2 -c
$K img convert -O raw odd-src.raw odd-r.raw
tap_check "convert to raw of a 100000-byte raw is 100352 bytes and equal" \
	bash -c "[ \$(stat -c %s odd-r.raw) -eq 100352 ] && qemu-img compare -q odd-src.raw odd-r.raw"
$K img resize odd.qcow2 200001 >out 2>&1
rc=$?
qemu-img resize -q oddq.qcow2 200001 >/dev/null 2>&1
qrc=$?
tap_check "resize of qcow2 to 200001 is refused like qemu-img's (rc $rc, qemu $qrc)" \
	bash -c "[ $rc -eq 1 ] && [ $qrc -ne 0 ] && grep -q 'multiple of 512' out"
$K img resize -f raw odd.raw 200001 >/dev/null
tap_check "resize of raw to 200001 keeps the exact size, as qemu-img" test "$(stat -c %s odd.raw)" -eq 200001

# info with a snapshot list, as qemu-img shows it (human and JSON)
qemu-img create -q -f qcow2 snaps.qcow2 1M
qemu-img snapshot -c first snaps.qcow2 && qemu-io -c 'write -P 1 0 64k' snaps.qcow2 >/dev/null
qemu-img snapshot -c second snaps.qcow2
$K img snapshot -c third snaps.qcow2
snaplist() { sed -n '/^Snapshot list:/,/^Format specific/p'; }
tap_check "info: the snapshot list reads as qemu-img's (human)" \
	bash -c "$(declare -f snaplist); diff <(qemu-img info snaps.qcow2 | snaplist) <($K img info snaps.qcow2 | snaplist)"
tap_check "snapshot -l reads as qemu-img's" bash -c "diff <(qemu-img snapshot -l snaps.qcow2) <($K img snapshot -l snaps.qcow2)"
qemu-img info --output json snaps.qcow2 >q-info.json
$K img info --output json snaps.qcow2 >k-info.json
tap_check "info --output json: the snapshots as qemu-img's" python3 -c "
import json
q = json.load(open('q-info.json')); k = json.load(open('k-info.json'))
assert len(q['snapshots']) == 3, q
assert q['snapshots'] == k['snapshots'], (q['snapshots'], k['snapshots'])
for key in ('virtual-size', 'cluster-size', 'format', 'dirty-flag'):
    assert q[key] == k[key], key"
# check --output json against qemu-img's: clean images, then one with a leaked cluster
json_agrees() { # img
	qemu-img check --output json "$1" >q-check.json 2>/dev/null
	$K img check --output json "$1" >k-check.json 2>/dev/null
	python3 -c "
import json
q = json.load(open('q-check.json')); k = json.load(open('k-check.json'))
for key in ('check-errors', 'corruptions', 'leaks', 'total-clusters', 'image-end-offset',
            'allocated-clusters', 'compressed-clusters'):
    assert q.get(key, 0) == k.get(key, 0), (key, q, k)"
}
tap_check "check --output json of an image with snapshots agrees with qemu-img" json_agrees snaps.qcow2
tap_check "check --output json of a kestrel-written image agrees with qemu-img" json_agrees k-64k.qcow2
cp k-64k.qcow2 leakj.qcow2
add_leak leakj.qcow2
tap_check "check --output json counts a leaked cluster as qemu-img does" \
	bash -c "$(declare -f json_agrees); K=$K json_agrees leakj.qcow2 && grep -q '\"leaks\": 1' k-check.json"
# convert -f: the source format is taken as given, not probed
$K img convert -f raw -O raw snaps.qcow2 bytes.raw
tap_check "convert -f raw copies a qcow2 file byte for byte" cmp -s snaps.qcow2 bytes.raw
tap_check "convert -f qcow2 of a raw file is refused" \
	bash -c "! $K img convert -f qcow2 -O raw odd-src.raw x.raw 2>err && grep -q 'not a qcow2 image' err"
tap_check "convert -f qcow2 of a qcow2 file reads it" \
	bash -c "$K img convert -f qcow2 -O raw snaps.qcow2 s.raw && qemu-img compare -q snaps.qcow2 s.raw"

tap_done
