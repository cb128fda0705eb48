#!/bin/sh
# kt-limit: 600
# virtio-net over a tap (--net tap,ifname=ktap0): the case makes a persistent tap in L1 (or on
# the host where KVM is native) with busybox tunctl, gives it 192.168.77.1/24, and boots the guest
# with 192.168.77.2/24 (kt.ip=, no DHCP on a tap). The guest pings the host and fetches 1 MiB
# from an httpd the case runs on 192.168.77.1; the case fetches 1 MiB from the guest's httpd.
# Both md5s checked; transfer times printed as diagnostics. Needs /dev/net/tun (L1 loads tun.ko)
# and root; otherwise skipped with the reason.
. "$KT_LIB"
case "$1" in
run) ;;
*) exit 0 ;;
esac

TAP=ktap0
HIP=192.168.77.1
GIP=192.168.77.2
HPORT=18082
MIB=1048576
BB=$(command -v busybox || echo busybox)
if [ ! -c /dev/net/tun ]; then
	kt_skip "net-tap" "no /dev/net/tun here (tun.ko not loaded)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	kt_skip "net-tap" "making a tap needs root"
	exit 0
fi
"$BB" tunctl -t "$TAP" >/dev/null 2>&1
if ! "$BB" ip link set "$TAP" up 2>/dev/null; then
	kt_skip "net-tap" "could not make tap $TAP (busybox tunctl)"
	exit 0
fi
"$BB" ip addr add "$HIP/24" dev "$TAP"

W=/tmp/kt-net-tap
rm -rf "$W"
mkdir -p "$W/www"
dd if=/dev/urandom of="$W/www/g.bin" bs=1024 count=1024 2>/dev/null
dd if=/dev/zero of="$W/www/big.bin" bs=65536 count=256 2>/dev/null # 16 MiB, timing only
gmd5=$(md5sum <"$W/www/g.bin" | cut -d' ' -f1)
"$BB" httpd -f -p "$HIP:$HPORT" -h "$W/www" &
httpd_pid=$!

# The host half of the transfers (kt_fetch_from_guest in tests/guest/lib.sh).
kt_fetch_from_guest "$GIP" 80 "$W" &
fetcher=$!

log=$KT_OUT/net-tap.log
limit=$KT_TIMEOUT
KT_TIMEOUT=$((KT_TIMEOUT * 2))
kt_vm "$log" kestrel run --kernel "$KT_GUEST/vmlinuz" --initrd "$KT_GUEST/initramfs.cpio.gz" \
	--mem 512M --cpus 1 --no-reboot --console stdio -v --net "tap,ifname=$TAP" \
	--cmdline "console=ttyS0 kestrel.test=net kt.ip=$GIP/24 kt.hip=$HIP kt.hport=$HPORT $(kt_token)"
KT_TIMEOUT=$limit
kill "$fetcher" "$httpd_pid" 2>/dev/null
wait "$fetcher" "$httpd_pid" 2>/dev/null
"$BB" tunctl -d "$TAP" >/dev/null 2>&1

kt_ran net-tap "$log"
if ! grep -q "KT net-done" "$log"; then
	kt_fail "net-tap: guest script did not finish (no 'KT net-done'; $(kt_end "$log"))"
	kt_show "$log"
	exit 0
fi
if grep -q "tap $TAP with a 12-byte vnet header" "$log.err"; then
	kt_ok "net-tap: attached to $TAP with the vnet header"
else
	kt_fail "net-tap: no 'tap $TAP with a 12-byte vnet header' on stderr"
	tail -n 5 "$log.err" | kt_diag
fi
kt_expect "net-tap: the guest pings the host" "$(kt_get "$log" ping)" ok
kt_expect "net-tap: guest GET from $HIP answered 200" \
	"$(kt_get "$log" get_status | cut -d' ' -f2)" 200
kt_expect "net-tap: the 1 MiB the guest fetched from the host has the host's md5" \
	"$(kt_get "$log" fetched_md5)" "$gmd5"
want=$(kt_get "$log" served_md5)
have=$(cat "$W/f.md5" 2>/dev/null)
if [ -n "$want" ] && [ "$want" = "$have" ]; then
	kt_ok "net-tap: the 1 MiB the host fetched from the guest has the guest's md5"
else
	kt_fail "net-tap: host fetch md5 '$have', guest served '$want'"
fi
kt_expect "net-tap: the guest saw the host finish" "$(kt_get "$log" host_fetched)" yes
gb=$(kt_get "$log" get16_bytes)
gs=$(kt_get "$log" get16_secs)
echo "tap: guest <- host: ${gb:-?} bytes of a 16 MiB file in ${gs}s, $(kt_rate "${gb:-0}" "$gs")" |
	kt_diag
bb=$(cat "$W/big.bytes" 2>/dev/null)
bs=$(cat "$W/big.secs" 2>/dev/null)
echo "tap: host <- guest: ${bb:-?} bytes of a 16 MiB file in ${bs}s, $(kt_rate "${bb:-0}" "$bs")" |
	kt_diag
grep "virtio-net0: rx\|TUNSETOFFLOAD" "$log.err" | kt_diag
# Offloads: with TSO negotiated and the tap's vnet header, the guest hands over TCP segments
# larger than one Ethernet frame; without them every frame is at most 1514 bytes.
avg=$(sed -n 's/.*virtio-net0: rx.* tx \([0-9]*\) frames \([0-9]*\) bytes.*/\1 \2/p' "$log.err" |
	awk '$1 > 0 { printf "%d", $2 / $1 }')
if [ -n "$avg" ] && [ "$avg" -gt 1514 ]; then
	kt_ok "net-tap: guest TSO reaches the tap (average tx frame $avg bytes)"
else
	kt_fail "net-tap: average tx frame '${avg}' bytes: no segmentation offload"
fi
exit 0
