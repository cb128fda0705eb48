#!/bin/sh
# kt-limit: 900
# virtio-net acceptance over user networking (guest side: tests/guest/guest-scripts/net.sh):
# the guest boots with --net user,hostfwd=tcp::FWD-:80, gets 10.0.2.15 by DHCP, serves a 1 MiB
# random file with busybox httpd, which this case fetches through the hostfwd port; the guest
# fetches a 1 MiB random file from the httpd this case runs on 127.0.0.1:HPORT (10.0.2.2 for
# the guest). Both md5s are compared; the transfer times are printed as diagnostics.
# Runs where kestrel runs (inside the nested L1, whose init leaves lo down: brought up here).
. "$KT_LIB"
case "$1" in
run) ;;
*) exit 0 ;;
esac

FWD=18080
HPORT=18081
MIB=1048576
W=/tmp/kt-net
rm -rf "$W"
mkdir -p "$W/www"
BB=$(command -v busybox || echo busybox)
ip link set lo up 2>/dev/null || "$BB" ip link set lo up 2>/dev/null

dd if=/dev/urandom of="$W/www/g.bin" bs=1024 count=1024 2>/dev/null
dd if=/dev/zero of="$W/www/big.bin" bs=65536 count=256 2>/dev/null # 16 MiB, timing only
gmd5=$(md5sum <"$W/www/g.bin" | cut -d' ' -f1)
"$BB" httpd -f -p "127.0.0.1:$HPORT" -h "$W/www" &
httpd_pid=$!

# The host half of the transfers (kt_fetch_from_guest in tests/guest/lib.sh).
kt_fetch_from_guest 127.0.0.1 "$FWD" "$W" &
fetcher=$!

log=$KT_OUT/net.log
limit=$KT_TIMEOUT
KT_TIMEOUT=$((KT_TIMEOUT * 2)) # boot, DHCP and two transfers under nested TCG
kt_vm "$log" kestrel run --kernel "$KT_GUEST/vmlinuz" --initrd "$KT_GUEST/initramfs.cpio.gz" \
	--mem 512M --cpus 1 --no-reboot --console stdio -v \
	--net "user,hostfwd=tcp::$FWD-:80" \
	--cmdline "console=ttyS0 kestrel.test=net kt.hport=$HPORT $(kt_token)"
KT_TIMEOUT=$limit
kill "$fetcher" "$httpd_pid" 2>/dev/null
wait "$fetcher" "$httpd_pid" 2>/dev/null
kt_ran net-user "$log"
echo "guest step times (uptime s): $(grep "KT t_" "$log" | tr '\n' ' ')" | kt_diag
if ! grep -q "KT net-done" "$log"; then
	kt_fail "net-user: guest script did not finish (no 'KT net-done'; $(kt_end "$log"))"
	kt_show "$log"
	exit 0
fi
kt_expect "net-user: eth0 is driven by virtio_net" "$(kt_get "$log" driver)" virtio_net
kt_expect "net-user: default MAC" "$(kt_get "$log" mac)" 52:54:00:12:34:56
kt_expect "net-user: DHCP gave 10.0.2.15" "$(kt_get "$log" ip)" 10.0.2.15
kt_expect "net-user: DHCP router is 10.0.2.2" "$(kt_get "$log" dhcp_router)" 10.0.2.2
kt_expect "net-user: DHCP DNS is 10.0.2.3" "$(kt_get "$log" dhcp_dns | cut -d' ' -f1)" 10.0.2.3
kt_expect "net-user: guest GET from 10.0.2.2 answered 200" \
	"$(kt_get "$log" get_status | cut -d' ' -f2)" 200
kt_expect "net-user: the 1 MiB the guest fetched from the host has the host's md5" \
	"$(kt_get "$log" fetched_md5)" "$gmd5"
want=$(kt_get "$log" served_md5)
have=$(cat "$W/f.md5" 2>/dev/null)
if [ -n "$want" ] && [ "$want" = "$have" ]; then
	kt_ok "net-user: the 1 MiB fetched through hostfwd has the guest's md5"
else
	kt_fail "net-user: hostfwd fetch md5 '$have', guest served '$want'"
fi
kt_expect "net-user: the guest saw the host finish" "$(kt_get "$log" host_fetched)" yes
if grep -q "virtio-net0: 2 doorbells on ioeventfd" "$log.err"; then
	kt_ok "net-user: both virtio-net doorbells on ioeventfds"
else
	kt_fail "net-user: no 'virtio-net0: 2 doorbells on ioeventfd' on stderr"
	tail -n 5 "$log.err" | kt_diag
fi
# Throughput over slirp (nested TCG: slow, and never asserted).
gs=$(kt_get "$log" get_secs)
echo "guest <- host (10.0.2.2): 1 MiB in ${gs}s, $(kt_rate $MIB "$gs")" | kt_diag
gb=$(kt_get "$log" get16_bytes)
gs=$(kt_get "$log" get16_secs)
echo "guest <- host (10.0.2.2): ${gb:-?} bytes of a 16 MiB file in ${gs}s, $(kt_rate "${gb:-0}" "$gs")" |
	kt_diag
hs=$(cat "$W/f.secs" 2>/dev/null)
echo "host <- guest (hostfwd): 1 MiB in ${hs}s, $(kt_rate $MIB "$hs")" | kt_diag
bb=$(cat "$W/big.bytes" 2>/dev/null)
bs=$(cat "$W/big.secs" 2>/dev/null)
echo "host <- guest (hostfwd): ${bb:-?} bytes of a 16 MiB file in ${bs}s, $(kt_rate "${bb:-0}" "$bs")" |
	kt_diag
grep "virtio-net0: rx" "$log.err" | kt_diag
m=$(kt_get "$log" msi_lines)
if [ -n "$m" ] && [ "$m" -ge 1 ]; then
	kt_ok "net-user: virtio interrupts are PCI-MSI ($m lines)"
else
	kt_fail "net-user: virtio lines with PCI-MSI: '$m' (want >= 1)"
fi

# INTx (pci=nomsi) and 2 vCPUs: DHCP and the guest's fetch still work.
log=$KT_OUT/net-intx.log
"$BB" httpd -f -p "127.0.0.1:$HPORT" -h "$W/www" &
httpd_pid=$!
kt_vm "$log" kestrel run --kernel "$KT_GUEST/vmlinuz" --initrd "$KT_GUEST/initramfs.cpio.gz" \
	--mem 512M --cpus 2 --no-reboot --console stdio \
	--net "user,mac=52:54:00:ab:cd:ef" \
	--cmdline "console=ttyS0 pci=nomsi kestrel.test=net kt.quick kt.hport=$HPORT $(kt_token)"
kill "$httpd_pid" 2>/dev/null
wait "$httpd_pid" 2>/dev/null
kt_ran net-intx "$log"
if grep -q "KT net-done" "$log"; then
	kt_expect "net-intx: mac= option" "$(kt_get "$log" mac)" 52:54:00:ab:cd:ef
	kt_expect "net-intx: DHCP gave 10.0.2.15" "$(kt_get "$log" ip)" 10.0.2.15
	kt_expect "net-intx: the 1 MiB fetched from the host has its md5" \
		"$(kt_get "$log" fetched_md5)" "$gmd5"
	kt_expect "net-intx: no PCI-MSI with pci=nomsi" "$(kt_get "$log" msi_lines)" 0
	gs=$(kt_get "$log" get_secs)
	echo "INTx: guest <- host (10.0.2.2): 1 MiB in ${gs}s, $(kt_rate $MIB "$gs")" | kt_diag
else
	kt_fail "net-intx: guest script did not finish (no 'KT net-done'; $(kt_end "$log"))"
	kt_show "$log"
fi
exit 0
