#!/bin/bash
# kestrel img features checked side by side with qemu-img: create -o preallocation=
# (off/metadata/falloc/full, qcow2 and raw: qemu-img check clean, map flags as qemu's, the
# space du shows), convert -n (into an existing image; one too small is an error),
# convert -B/-F (only what differs from the backing file is written) and measure (the same
# numbers as qemu-img measure for sizes, cluster sizes, options and images with data).
. "$KESTREL_ROOT/tests/lib/tap.sh"
K=$KESTREL
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
	tap_skip "img extras vs qemu-img" "qemu-img/qemu-io not installed (scripts/deps.sh installs qemu-utils)"
	tap_done
fi
T=$(mktemp -d /tmp/kestrel-img-extras.XXXXXX)
trap 'rm -rf "$T"' EXIT
# a private copy: a rebuild of the tree during the test must not pull the binary away
cp "$KESTREL" "$T/kestrel" && K=$T/kestrel
cd "$T" || exit 1
. "$KESTREL_ROOT/tests/lib/cli.sh"

qio() { qemu-io -f qcow2 "$@" >/dev/null; }
kb() { du -k "$1" | cut -f1; } # space the file takes, KiB
# map as qemu-img prints it, without the host offsets (the layouts may differ)
qmap() { qemu-img map --output json "$1" | tr -d ' \n' | sed 's/,"offset":[0-9]*//g'; }
kmap() { $K img map --output json "$1" | tr -d ' \n' | sed 's/,"offset":[0-9]*//g; s/,"compressed":false//g'; }
# qemu-img map and kestrel img map of OURS both show what qemu-img map shows of QEMUS
map_same() { [ "$(qmap "$1")" = "$(qmap "$2")" ] && [ "$(kmap "$1")" = "$(qmap "$2")" ]; }
# the length of a preallocated image is qemu-img measure's "fully allocated size"
full_length() { # image measure-args...
	local img=$1
	shift
	[ "$(stat -c %s "$img")" = "$(qemu-img measure -O qcow2 "$@" | sed -n 's/^fully allocated size: //p')" ]
}
# a 64 MiB qcow2 with data, a zero cluster, a partial cluster and a compressed cluster
qemu-img create -q -f qcow2 d.qcow2 64M
qio -c "write -P 1 0 1M" -c "write -P 2 10M 4k" -c "write -z 20M 1M" -c "write -P 3 33M 3000" \
	-c "write -c -P 4 40M 64k" d.qcow2
qemu-img convert -O raw d.qcow2 d.raw

# ---- create -o preallocation ----
for m in off metadata falloc full; do
	ok=1
	$K img create -f qcow2 -o preallocation=$m p-$m.qcow2 100M >/dev/null || ok=0
	qemu-img create -q -f qcow2 -o preallocation=$m q-$m.qcow2 100M
	tap_check "create qcow2 preallocation=$m: qemu-img check clean" \
		bash -c "[ $ok = 1 ] && qemu-img check -q p-$m.qcow2"
	tap_check "qcow2 preallocation=$m reads zeros (qemu-img compare with qemu's)" \
		qemu-img compare -q p-$m.qcow2 q-$m.qcow2
	tap_check "qcow2 preallocation=$m: qemu-img map (and kestrel img map) as for qemu's image" \
		map_same p-$m.qcow2 q-$m.qcow2
	[ $m = off ] && continue # (our refcount table leaves room to grow: one more cluster)
	tap_check "qcow2 preallocation=$m: file length as qemu's" \
		bash -c "[ $(stat -c %s p-$m.qcow2) = $(stat -c %s q-$m.qcow2) ]"
done
tap_check "preallocation=metadata: every cluster allocated (check: 1600/1600)" \
	bash -c "qemu-img check p-metadata.qcow2 | grep -q '^1600/1600 = 100.00% allocated'"
tap_check "du: metadata and off take < 1 MiB, falloc and full >= 100 MiB" \
	bash -c "[ $(kb p-off.qcow2) -lt 1024 ] && [ $(kb p-metadata.qcow2) -lt 1024 ] &&
		 [ $(kb p-falloc.qcow2) -ge 102400 ] && [ $(kb p-full.qcow2) -ge 102400 ]"
tap_check "--help shows preallocation" bash -c "$K img --help | grep -q 'preallocation=off|metadata|falloc|full'"
# other geometries: clean, all zeros, as long as measure says. (qemu 7.2's own image with
# 512-byte clusters is longer, its refcount table moved as it grew, and at 3G it even
# reads old metadata as data, so compare with a zero raw image, not with qemu's.)
truncate -s 300M zero.raw
for o in cluster_size=512 cluster_size=4k,refcount_bits=1 cluster_size=2M compat=0.10 \
	refcount_bits=64,cluster_size=4k; do
	geometry_ok() {
		$K img create -f qcow2 -o preallocation=metadata,$o g.qcow2 300M >/dev/null &&
			qemu-img check -q g.qcow2 && qemu-img compare -q zero.raw g.qcow2 &&
			full_length g.qcow2 -o $o --size 300M
	}
	tap_check "preallocation=metadata,$o 300M: check clean, reads zeros, measure's length" \
		geometry_ok
done
$K img create -f qcow2 -o preallocation=metadata w.qcow2 64M >/dev/null
wlen=$(stat -c %s w.qcow2)
tap_check "convert -n into a preallocated image writes in place (same length), check clean" \
	bash -c "$K img convert -n -O qcow2 d.qcow2 w.qcow2 && qemu-img check -q w.qcow2 &&
		 qemu-img compare -q d.qcow2 w.qcow2 && [ \$(stat -c %s w.qcow2) = $wlen ]"
for m in off falloc full; do
	$K img create -f raw -o preallocation=$m r-$m.raw 10M >/dev/null
done
tap_check "raw preallocation: off is sparse, falloc and full take 10 MiB, all zeros" \
	bash -c "[ $(kb r-off.raw) -eq 0 ] && [ $(kb r-falloc.raw) -ge 10240 ] &&
		 [ $(kb r-full.raw) -ge 10240 ] && cmp -s r-off.raw r-full.raw && cmp -s r-off.raw r-falloc.raw"
tap_check "empty qcow2 (size 0) with preallocation=metadata: check clean" \
	bash -c "$K img create -f qcow2 -o preallocation=metadata e.qcow2 0 >/dev/null && qemu-img check -q e.qcow2"
expect_error "preallocation=metadata for raw: one line, exit 1" \
	"preallocation=metadata is for qcow2 images only" img create -f raw -o preallocation=metadata bad.raw 1M
tap_check "... and no file is left" test ! -e bad.raw
expect_error "unknown preallocation mode: one line, exit 1" \
	"preallocation must be off, metadata, falloc or full, not 'sparse'" img create -f qcow2 -o preallocation=sparse bad.qcow2 1M
expect_error "preallocation with a backing file: one line, exit 1" \
	"preallocation cannot be used with a backing file" img create -f qcow2 -b d.qcow2 -F qcow2 -o preallocation=metadata bad.qcow2
for m in metadata falloc full; do
	tap_check "convert -O qcow2 -o preallocation=$m: check clean, compare equal" \
		bash -c "$K img convert -O qcow2 -o preallocation=$m d.qcow2 c-$m.qcow2 &&
			 qemu-img check -q c-$m.qcow2 && qemu-img compare -q d.qcow2 c-$m.qcow2"
done
tap_check "convert -o preallocation: metadata stays sparse, full takes the whole disk" \
	bash -c "[ $(kb c-metadata.qcow2 2>/dev/null || echo 0) -lt 8192 ] && [ $(kb c-full.qcow2 2>/dev/null || echo 0) -ge 65536 ]"

# ---- convert -n ----
qemu-img create -q -f qcow2 n.qcow2 64M && qio -c "write -P 0xee 0 64M" n.qcow2
tap_check "convert -n into an existing qcow2 full of other data: check clean, compare equal" \
	bash -c "$K img convert -n -O qcow2 d.qcow2 n.qcow2 && qemu-img check -q n.qcow2 &&
		 qemu-img compare -q d.qcow2 n.qcow2"
head -c 64M /dev/urandom >n.raw
tap_check "convert -n into an existing raw file of random bytes: compare equal" \
	bash -c "$K img convert -n -O raw d.qcow2 n.raw && qemu-img compare -q d.qcow2 n.raw &&
		 [ \$(stat -c %s n.raw) = 67108864 ]"
qemu-img create -q -f qcow2 n2.qcow2 64M && qio -c "write -P 0xee 0 64M" n2.qcow2
tap_check "convert -n -c (compressed) into an existing qcow2: check clean, compare equal" \
	bash -c "$K img convert -n -c -O qcow2 d.qcow2 n2.qcow2 && qemu-img check -q n2.qcow2 &&
		 qemu-img compare -q d.qcow2 n2.qcow2"
qemu-img create -q -f qcow2 n3.qcow2 64M && qio -c "write -P 0xee 0 64M" n3.qcow2
tap_check "convert -n without -O uses the existing image's format" \
	bash -c "$K img convert -n d.raw n3.qcow2 && qemu-img check -q n3.qcow2 && qemu-img compare -q d.qcow2 n3.qcow2"
qemu-img create -q -f qcow2 big.qcow2 100M && qio -c "write -P 0xee 90M 1M" big.qcow2
tap_check "convert -n into a larger image: its tail is kept, its size too" \
	bash -c "$K img convert -n -O qcow2 d.qcow2 big.qcow2 && qemu-img check -q big.qcow2 &&
		 qemu-io -f qcow2 -r -c 'read -P 0xee 90M 1M' big.qcow2 | grep -vq Pattern &&
		 qemu-img info big.qcow2 | grep -q '(104857600 bytes)'"
qemu-img create -q -f raw small.raw 8M
small_before=$(kb small.raw)
expect_error "convert -n into an image too small: one line, exit 1" \
	"small.raw is smaller \(8388608 bytes\) than d.qcow2 \(67108864 bytes\)" img convert -n -O raw d.qcow2 small.raw
tap_check "... and the small image is unchanged" \
	bash -c "[ \$(du -k small.raw | cut -f1) = $small_before ] && [ \$(stat -c %s small.raw) = 8388608 ] && cmp -s small.raw <(head -c 8M /dev/zero)"
expect_error "convert -n into a missing file: one line, exit 1" \
	"nothere.raw: No such file or directory" img convert -n -O raw d.qcow2 nothere.raw
expect_error "convert -n with -o: one line, exit 1" \
	"-o has no effect when writing into an existing image" img convert -n -O qcow2 -o cluster_size=4k d.qcow2 n.qcow2

# ---- convert -B ----
# an overlay with a little data of its own over d.qcow2; its flat copy is the reference
qemu-img create -q -f qcow2 -b d.qcow2 -F qcow2 ov.qcow2
qio -c "write -P 5 50M 100k" -c "write -z 0 64k" -c "write -P 1 64k 4k" ov.qcow2
$K img convert -O qcow2 ov.qcow2 flat.qcow2
tap_check "convert -B: qemu-img info shows the backing file and its format" \
	bash -c "$K img convert -O qcow2 -B d.qcow2 -F qcow2 ov.qcow2 b.qcow2 &&
		 qemu-img info b.qcow2 | grep -q '^backing file: d.qcow2$' &&
		 qemu-img info b.qcow2 | grep -q '^backing file format: qcow2$'"
tap_check "convert -B: qemu-img check clean, compare equals the source" \
	bash -c "qemu-img check -q b.qcow2 && qemu-img compare -q ov.qcow2 b.qcow2"
tap_check "convert -B output is smaller than a plain convert" \
	bash -c "[ \$(stat -c %s b.qcow2) -lt \$(stat -c %s flat.qcow2) ] && [ $(kb b.qcow2) -lt 1024 ]"
tap_check "convert -B: only the clusters that differ from the backing file are in the image" \
	bash -c "qemu-img map --output json b.qcow2 | grep '\"depth\": 0' | tr -d ' ' |
		 grep -o '\"start\":[0-9]*,\"length\":[0-9]*' | tr '\n' ' ' |
		 grep -qx '\"start\":0,\"length\":65536 \"start\":52428800,\"length\":131072 '"
tap_check "convert -B of a flat raw copy of the backing file: nothing but metadata is written" \
	bash -c "$K img convert -O qcow2 -B d.qcow2 d.raw b2.qcow2 && qemu-img check -q b2.qcow2 &&
		 qemu-img compare -q d.raw b2.qcow2 && ! qemu-img map --output json b2.qcow2 | grep -q '\"depth\": 0'"
mkdir -p sub
tap_check "convert -B without -F: the backing file's format is probed and stored; a relative name is relative to the output" \
	bash -c "$K img convert -O qcow2 -B ../d.qcow2 ov.qcow2 sub/b3.qcow2 &&
		 qemu-img info sub/b3.qcow2 | grep -q '^backing file format: qcow2$' &&
		 qemu-img check -q sub/b3.qcow2 && qemu-img compare -q ov.qcow2 sub/b3.qcow2"
tap_check "convert -B -c: compressed, check clean, compare equal" \
	bash -c "$K img convert -c -O qcow2 -B d.qcow2 -F qcow2 ov.qcow2 b4.qcow2 &&
		 qemu-img check -q b4.qcow2 && qemu-img compare -q ov.qcow2 b4.qcow2"
expect_error "convert -B -O raw: one line, exit 1" "backing files are only for qcow2 output" \
	img convert -O raw -B d.qcow2 ov.qcow2 bad.raw
expect_error "convert -F without -B: one line, exit 1" "-B is missing" \
	img convert -O qcow2 -F qcow2 ov.qcow2 bad.qcow2
expect_error "convert -B with a missing backing file: one line, exit 1" \
	"cannot open backing file: nothere.qcow2" img convert -O qcow2 -B nothere.qcow2 ov.qcow2 bad.qcow2

# ---- measure ----
head -c 5000 /dev/urandom >odd.raw
qemu-img create -q -f qcow2 -o preallocation=metadata pm.qcow2 10M
measure_same() { # measure args...: kestrel prints what qemu-img prints (human and json)
	local out q k
	for out in human json; do
		q=$(qemu-img measure "$@" --output $out 2>&1) || return 1
		k=$($K img measure "$@" --output $out 2>&1) || return 1
		[ "$q" = "$k" ] || return 1
	done
}
for src in "--size 0" "--size 1000" "--size 1G" "--size 100G" d.qcow2 d.raw ov.qcow2 odd.raw \
	pm.qcow2 "-f raw d.qcow2"; do
	bad=""
	for o in "" "-o cluster_size=512" "-o cluster_size=4k,refcount_bits=1" "-o cluster_size=2M" \
		"-o compat=0.10" "-o refcount_bits=64" "-o preallocation=metadata" \
		"-o preallocation=falloc" "-o preallocation=full" "-o backing_file=x"; do
		# shellcheck disable=SC2086
		measure_same -O qcow2 $o $src || bad="$bad [-O qcow2 $o]"
	done
	for o in "" "-o preallocation=full"; do
		# shellcheck disable=SC2086
		measure_same -O raw $o $src || bad="$bad [-O raw $o]"
	done
	# shellcheck disable=SC2086
	measure_same $src || bad="$bad [no -O]"
	if [ -z "$bad" ]; then
		tap_ok "measure $src: equal to qemu-img measure (13 option sets, human and json)"
	else
		tap_fail "measure $src: differs from qemu-img measure for$bad"
	fi
done
tap_check "measure of a preallocated image made by kestrel: equal to qemu-img measure" \
	measure_same -O qcow2 c-full.qcow2
expect_error "measure with --size and a FILE: one line, exit 1" \
	"--size cannot be used together with a FILE" img measure --size 1G d.qcow2
expect_error "measure with neither: one line, exit 1" "give --size SIZE or a FILE" img measure -O qcow2
expect_error "measure too large for the cluster size: one line, exit 1" \
	"too large \(try a larger cluster size\)" img measure -O qcow2 -o cluster_size=512 --size 3T
expect_error "measure with a bad preallocation: one line, exit 1" "preallocation must be" \
	img measure -O qcow2 -o preallocation=bogus --size 1G
tap_done
