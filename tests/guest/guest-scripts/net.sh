#!/bin/sh
# Guest side of tests/net/cases/net.sh (--net user,hostfwd=tcp::FWD-:80) and net_tap.sh (a tap,
# static addresses from kt.ip= and kt.hip=). One "KT key=value"
# line per fact. The host side serves files on 10.0.2.2:PORT (kt.hport=PORT on the command line)
# and fetches http://<hostfwd>/f from the httpd started here; /fetched appears on its server
# when it has, which is what this script waits for before powering off.
t() { echo "KT t_$1=$(cut -d' ' -f1 /proc/uptime)"; }
hport= quick= static_ip= host=10.0.2.2
for w in $(cat /proc/cmdline); do
	case "$w" in
	kt.hport=*) hport=${w#kt.hport=} ;;
	kt.quick) quick=1 ;;		    # DHCP and one fetch only (the INTx run)
	kt.ip=*) static_ip=${w#kt.ip=} ;; # no DHCP: this address (the tap run)
	kt.hip=*) host=${w#kt.hip=} ;;	    # the host's address, instead of slirp's 10.0.2.2
	esac
done
# http_get PATH OUT: GET http://$host:$hport/PATH into OUT (headers included); busybox wget
# segfaults in this guest, nc works.
http_get() {
	printf 'GET /%s HTTP/1.0\r\n\r\n' "$1" | nc -w 30 "$host" "$hport" >"$2" 2>/dev/null
}

t start
ip link set lo up
echo "KT ifaces=$(ls /sys/class/net | tr '\n' ' ')"
echo "KT mac=$(cat /sys/class/net/eth0/address 2>/dev/null)"
echo "KT driver=$(basename "$(readlink /sys/class/net/eth0/device/driver 2>/dev/null)")"
# udhcpc neither brings the link up nor applies the lease by itself.
ip link set eth0 up
cat >/tmp/udhcpc.sh <<'EOF'
#!/bin/sh
case "$1" in
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route add default via "$r" dev "$interface"; break; done
	echo "KT dhcp_router=$router" >/tmp/dhcp.kt
	echo "KT dhcp_dns=$dns" >>/tmp/dhcp.kt
	;;
esac
EOF
chmod 755 /tmp/udhcpc.sh
t dhcp
if [ -n "$static_ip" ]; then
	ip addr add "$static_ip" dev eth0
	echo "KT ping=$(ping -c 3 -W 5 "$host" >/dev/null 2>&1 && echo ok || echo failed)"
else
	udhcpc -i eth0 -s /tmp/udhcpc.sh -q -n -t 10 -T 3 >/tmp/udhcpc.log 2>&1 ||
		cat /tmp/udhcpc.log
	cat /tmp/dhcp.kt 2>/dev/null
fi
echo "KT ip=$(ip -4 addr show dev eth0 | sed -n 's/.*inet \([0-9.]*\).*/\1/p' | head -n 1)"
t dhcp_done

# The file the host fetches through its hostfwd port.
mkdir -p /tmp/www
dd if=/dev/urandom of=/tmp/www/f bs=1024 count=1024 2>/dev/null
echo "KT served_md5=$(md5sum </tmp/www/f | cut -d' ' -f1)"
dd if=/dev/zero of=/tmp/www/big bs=65536 count=256 2>/dev/null # 16 MiB, timing only
httpd -p 80 -h /tmp/www && echo "KT httpd=up"

# The file the host serves, fetched from $host (slirp maps 10.0.2.2 to the host's loopback).
t get
s0=$(cut -d' ' -f1 /proc/uptime)
http_get g.bin /tmp/g.resp
s1=$(cut -d' ' -f1 /proc/uptime)
echo "KT get_status=$(head -n 1 /tmp/g.resp | tr -d '\r')"
echo "KT get_bytes=$(wc -c </tmp/g.resp)"
echo "KT fetched_md5=$(tail -c 1048576 /tmp/g.resp | md5sum | cut -d' ' -f1)"
echo "KT get_secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')"
rm -f /tmp/g.resp
echo "KT msi_lines=$(grep virtio /proc/interrupts | grep -c PCI-MSI)"
if [ -n "$quick" ]; then
	echo "KT net-done"
	poweroff -f
fi
# 16 MiB more, for the throughput figure only.
s0=$(cut -d' ' -f1 /proc/uptime)
http_get big.bin /tmp/big.resp
s1=$(cut -d' ' -f1 /proc/uptime)
echo "KT get16_bytes=$(wc -c </tmp/big.resp)"
echo "KT get16_secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')"
rm -f /tmp/big.resp

# Wait (at most ~5 min) until the host says it has fetched /f, then power off.
t wait
i=0
while [ $i -lt 150 ]; do
	http_get fetched /tmp/done.resp
	if head -n 1 /tmp/done.resp | grep -q ' 200 '; then
		echo "KT host_fetched=yes"
		break
	fi
	i=$((i + 1))
	sleep 2
done
t end
echo "KT net-done"
poweroff -f
