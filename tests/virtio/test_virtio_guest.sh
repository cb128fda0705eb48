#!/bin/bash
# virtio guest acceptance (make check): boots the test guest with virtio disks, rng and console
# (tests/virtio/cases/virtio.sh, natively or in the nested-KVM L1), then checks on the host, with
# e2fsprogs' debugfs and e2fsck, the ext4 image the guest wrote (sent back by the case as
# gzip+base64 in its logs).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${KESTREL_BUILD:-$root/build}
out=$("$root/tests/nested/run-cases.sh" -n virtio "$here"/cases/*.sh)
# Renumber: the cases' lines, then the host-side checks, then one plan line.
lines=$(printf '%s\n' "$out" | grep -v '^1\.\.[0-9]*$')
n=0 failed=0
emit() { # emit ok|not-ok TEXT
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
while IFS= read -r l; do
	case "$l" in
	"ok "*) emit ok "${l#ok * - }" ;;
	"not ok "*) emit not-ok "${l#not ok * - }" ;;
	*) echo "$l" ;;
	esac
done <<<"$lines"

dir=$build/nested/virtio/out/virtio
b64=$dir/ext4.img.gz.b64
if printf '%s\n' "$out" | grep -q '# SKIP'; then
	n=$((n + 1))
	echo "ok $n - host check of the guest's ext4 image # SKIP the guest cases did not run here"
elif [ ! -s "$b64" ]; then
	emit not-ok "host check: no ext4 image came back from the guest ($b64)"
elif ! command -v debugfs >/dev/null && [ ! -x /usr/sbin/debugfs ]; then
	n=$((n + 1))
	echo "ok $n - host check of the guest's ext4 image # SKIP debugfs (e2fsprogs) not installed"
else
	PATH=$PATH:/usr/sbin:/sbin
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	if base64 -d "$b64" | gunzip >"$tmp/ext4.img" 2>/dev/null; then
		got=$(debugfs -R "cat /hello.txt" "$tmp/ext4.img" 2>/dev/null)
		if [ "$got" = hello-from-kestrel ]; then
			emit ok "host: debugfs reads /hello.txt the guest wrote"
		else
			emit not-ok "host: /hello.txt is '$got'"
		fi
		debugfs -R "dump /dir/blob $tmp/blob" "$tmp/ext4.img" >/dev/null 2>&1
		want=$(sed -n 's/.*KT blob_md5=//p' "$dir/virtio-msi.log" | tail -n 1)
		have=$(md5sum <"$tmp/blob" 2>/dev/null | cut -d' ' -f1)
		if [ -n "$want" ] && [ "$want" = "$have" ]; then
			emit ok "host: /dir/blob (64 KiB) has the md5 the guest computed"
		else
			emit not-ok "host: /dir/blob md5 '$have', guest said '$want'"
		fi
		if e2fsck -fn "$tmp/ext4.img" >"$tmp/fsck.log" 2>&1; then
			emit ok "host: e2fsck -fn finds the filesystem clean"
		else
			emit not-ok "host: e2fsck -fn reports problems"
			sed 's/^/# /' "$tmp/fsck.log" | tail -n 10
		fi
	else
		emit not-ok "host: the returned image does not decode"
	fi
fi

# The qcow2 overlay the guest wrote (and its base), checked with qemu-img: no errors, and equal to
# what the guest did (the base's markers, 1 MiB of pattern at 1 MiB, zeros at 4-5 MiB).
qb64=$dir/qcow2.tar.gz.b64
if printf '%s\n' "$out" | grep -q '# SKIP'; then
	n=$((n + 1))
	echo "ok $n - qemu-img check of the guest's qcow2 overlay # SKIP the guest cases did not run here"
elif ! command -v qemu-img >/dev/null; then
	n=$((n + 1))
	echo "ok $n - qemu-img check of the guest's qcow2 overlay # SKIP qemu-img (qemu-utils) not installed"
elif [ ! -s "$qb64" ]; then
	emit not-ok "host check: no qcow2 overlay came back from the guest ($qb64)"
else
	q=$(mktemp -d)
	if base64 -d "$qb64" | gunzip | tar xf - -C "$q" 2>/dev/null; then
		if qemu-img check "$q/overlay.qcow2" >"$q/check.log" 2>&1; then
			emit ok "host: qemu-img check finds the guest-written qcow2 overlay clean"
		else
			emit not-ok "host: qemu-img check reports problems in the overlay"
			sed 's/^/# /' "$q/check.log" | tail -n 10
		fi
		{ printf 'KESTREL-BASE'; head -c 1048564 /dev/zero
		  yes KESTREL-PATTERN | head -c 1048576; head -c 1048576 /dev/zero
		  head -c 1048576 /dev/zero; head -c 1048576 /dev/zero; } >"$q/expect.raw"
		truncate -s 8M "$q/expect.raw"
		if qemu-img compare -f qcow2 -F raw "$q/overlay.qcow2" "$q/expect.raw" >"$q/cmp.log" 2>&1; then
			emit ok "host: qemu-img compare: the overlay reads as base + the guest's write and discard"
		else
			emit not-ok "host: qemu-img compare: $(head -n 1 "$q/cmp.log")"
		fi
	else
		emit not-ok "host: the returned qcow2 files do not decode"
	fi
	rm -rf "$q"
fi
echo "1..$n"
exit $failed
