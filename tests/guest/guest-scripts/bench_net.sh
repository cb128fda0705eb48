#!/bin/sh
# Guest side of make bench's net part (tests/guest/bench/net_bench.sh): TCP throughput over the
# VMM's user networking (libslirp), the guest booted with a hostfwd rule to its port 80.
#   1. DHCP on eth0 (10.0.2.15, router 10.0.2.2).
#   2. host -> guest: fetch /in.bin (kt.net_mib= MiB) from the httpd the host side runs on
#      10.0.2.2:PORT (kt.hport=PORT) with busybox nc into /tmp, timed here; then its md5.
#      (busybox wget segfaults in this guest; nc works.)
#   3. guest -> host: serve /out.bin (the same size, random) with busybox httpd on port 80 and
#      create /ready, which the host side polls through the hostfwd port before it fetches
#      /out.bin (timed there). The transfers never overlap.
#   4. wait for /fetched on the host's httpd (the host has its copy), power off.
# Output: "KT key=value" lines; KT-NET h2g <bytes received> <seconds> <md5 of the body>;
# "KT net-bench-done" at the end.
hport="" mib=16
for w in $(cat /proc/cmdline); do
	case "$w" in
	kt.hport=*) hport=${w#kt.hport=} ;;
	kt.net_mib=*) mib=${w#kt.net_mib=} ;;
	esac
done
up() { cut -d' ' -f1 /proc/uptime; }
# http_get PATH OUT: GET http://10.0.2.2:$hport/PATH into OUT (headers included)
http_get() {
	printf 'GET /%s HTTP/1.0\r\n\r\n' "$1" | nc -w 30 10.0.2.2 "$hport" >"$2" 2>/dev/null
}

ip link set lo up
ip link set eth0 up
cat >/tmp/udhcpc.sh <<'EOF'
#!/bin/sh
case "$1" in
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route add default via "$r" dev "$interface"; break; done
	;;
esac
EOF
chmod 755 /tmp/udhcpc.sh
udhcpc -i eth0 -s /tmp/udhcpc.sh -q -n -t 10 -T 3 >/tmp/udhcpc.log 2>&1 || cat /tmp/udhcpc.log
echo "KT ip=$(ip -4 addr show dev eth0 | sed -n 's/.*inet \([0-9.]*\).*/\1/p' | head -n 1)"

# host -> guest
s0=$(up)
http_get in.bin /tmp/in.resp
s1=$(up)
bytes=$(wc -c </tmp/in.resp)
echo "KT h2g_status=$(head -n 1 /tmp/in.resp | tr -d '\r')"
md5=$(tail -c $((mib * 1048576)) /tmp/in.resp | md5sum | cut -d' ' -f1)
echo "KT-NET h2g $bytes $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }') $md5"
rm -f /tmp/in.resp

# guest -> host
mkdir -p /tmp/www
dd if=/dev/urandom of=/tmp/www/out.bin bs=1048576 count="$mib" 2>/dev/null
echo "KT served_md5=$(md5sum </tmp/www/out.bin | cut -d' ' -f1)"
httpd -p 80 -h /tmp/www && echo "KT httpd=up"
: >/tmp/www/ready

# Wait until the host has fetched /out.bin (the VMM's time limit bounds this).
i=0
while [ $i -lt 1000 ]; do
	http_get fetched /tmp/done.resp
	if head -n 1 /tmp/done.resp | grep -q ' 200 '; then
		echo "KT host_fetched=yes"
		break
	fi
	i=$((i + 1))
	sleep 2
done
echo "KT net-bench-done"
poweroff -f
