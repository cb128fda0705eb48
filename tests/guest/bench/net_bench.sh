#!/bin/sh
# kt-limit: 3600
# Network benchmark, run by scripts/bench.sh through tests/nested/run-cases.sh (natively where
# /dev/kvm works, else inside the nested L1 guest, in the same L1 boot as the other parts).
# Not a test: it prints
#   NETBENCH <vmm> <round> <figure> <MB/s or NA> [<seconds>]   figure: host-to-guest, guest-to-host
# a "not ok" line for every transfer that did not arrive whole (md5 or size wrong, no answer),
# and one "ok" line when it finished.
#
# TCP over the VMM's user networking (libslirp in both): each VMM boots the test guest (512 MiB,
# 1 vCPU, KVM) with a virtio-net NIC and a hostfwd rule from a host port to the guest's port 80
#   Kestrel: --net user,hostfwd=tcp::P-:80
#   QEMU:    -M pc -netdev user,id=n0,hostfwd=tcp::P-:80 -device virtio-net-pci,netdev=n0,romfile=
#            (no option ROM: -kernel boots need none, and L1 carries no iPXE ROMs)
# and the guest script (tests/guest/guest-scripts/bench_net.sh) measures
#   host-to-guest  the guest fetches N MiB of random data from a busybox httpd here
#                  (127.0.0.1:HPORT, 10.0.2.2 for the guest) with busybox nc, timed in the guest;
#   guest-to-host  this script fetches N MiB of random data from the guest's busybox httpd
#                  through the hostfwd port with busybox nc, timed here;
# one after the other, never at the same time. Each transfer's body is checked by md5 (and the
# response status); a broken one gives NA and a "not ok" line, never a speed.
# MB = 10^6 bytes of body; HTTP headers and the TCP/HTTP set-up are inside the timed span.
# KT_BENCH_NET_VMMS picks the VMMs (default "kestrel qemu"), KT_BENCH_NET_RUNS the interleaved
# rounds (default 3), KT_BENCH_NET_MIB the size of each transfer (default 16).
# kt-needs: qemu
. "$KT_LIB"
case "$1" in
run) ;;
*) exit 0 ;;
esac

RUNS=${KT_BENCH_NET_RUNS:-3}
VMMS=${KT_BENCH_NET_VMMS:-kestrel qemu}
MIB=${KT_BENCH_NET_MIB:-16}
HPORT=18181
W=/tmp/kt-netbench
rm -rf "$W"
mkdir -p "$W/www"
BB=$(command -v busybox || echo busybox)
ip link set lo up 2>/dev/null || "$BB" ip link set lo up 2>/dev/null
body_bytes=$((MIB * 1048576))

dd if=/dev/urandom of="$W/www/in.bin" bs=1048576 count="$MIB" 2>/dev/null
in_md5=$(md5sum <"$W/www/in.bin" | cut -d' ' -f1)

# status FILE: the HTTP status code of a response
status() { head -n 1 "$1" 2>/dev/null | cut -d' ' -f2; }
# mbps BYTES SECONDS
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", n / s / 1e6; else print "NA" }'; }

CMDLINE="console=ttyS0 kestrel.test=bench_net kt.hport=$HPORT kt.net_mib=$MIB"
QEMU_COMMON="-accel kvm -M pc -m 512 -smp 1 -nodefaults -no-user-config -display none -serial stdio -no-reboot"
# boot, DHCP, generating and hashing N MiB in the guest, two transfers of N MiB (allow 2 s/MiB
# each: nested TCG is slow)
limit=$KT_TIMEOUT
KT_TIMEOUT=$((limit + 120 + 4 * MIB))

"$BB" httpd -f -p "127.0.0.1:$HPORT" -h "$W/www" &
httpd_pid=$!

port=18200
i=1
while [ $i -le "$RUNS" ]; do
	for vmm in $VMMS; do
		port=$((port + 1)) # a fresh hostfwd port per boot
		log=$KT_OUT/net-$vmm-$i.log
		rm -f "$W/www/fetched" "$W/out.resp" "$W/g2h"
		# guest -> host, once the guest's /ready appears (after its own fetch)
		(
			n=0
			while [ $n -lt 1000 ]; do
				kt_http_get 127.0.0.1 "$port" ready "$W/ready.resp" # through hostfwd
				if [ "$(status "$W/ready.resp")" = 200 ]; then
					t0=$(kt_now)
					kt_http_get 127.0.0.1 "$port" out.bin "$W/out.resp"
					t1=$(kt_now)
					echo "$(status "$W/out.resp") $(wc -c <"$W/out.resp") $(awk -v a="$t0" -v b="$t1" \
						'BEGIN { printf "%.2f", b - a }') $(tail -c $body_bytes "$W/out.resp" |
						md5sum | cut -d' ' -f1)" >"$W/g2h"
					rm -f "$W/out.resp"
					: >"$W/www/fetched"
					exit 0
				fi
				n=$((n + 1))
				sleep 2
			done
		) &
		fetcher=$!
		tok=$(kt_token)
		case $vmm in
		kestrel)
			kt_vm "$log" kestrel run --kernel "$KT_GUEST/vmlinuz" \
				--initrd "$KT_GUEST/initramfs.cpio.gz" --mem 512M --cpus 1 --no-reboot \
				--console stdio --net "user,hostfwd=tcp::$port-:80" --cmdline "$CMDLINE $tok"
			;;
		qemu)
			# shellcheck disable=SC2086
			kt_vm "$log" qemu $QEMU_COMMON -kernel "$KT_GUEST/vmlinuz" \
				-initrd "$KT_GUEST/initramfs.cpio.gz" -append "$CMDLINE $tok" \
				-netdev "user,id=n0,hostfwd=tcp::$port-:80" \
				-device virtio-net-pci,netdev=n0,romfile=
			;;
		*)
			echo "# unknown VMM '$vmm' in KT_BENCH_NET_VMMS"
			kill "$fetcher" 2>/dev/null
			wait "$fetcher" 2>/dev/null
			continue
			;;
		esac
		kill "$fetcher" 2>/dev/null
		wait "$fetcher" 2>/dev/null
		if ! grep -q "KT net-bench-done" "$log"; then
			echo "# $vmm round $i: the guest did not finish (exit status $KT_RC after ${KT_SECS}s)"
			tail -n 5 "$log" | kt_diag
			head -n 3 "$log.err" | kt_diag
		fi

		# host -> guest: "KT-NET h2g BYTES SECONDS MD5" from the guest
		# shellcheck disable=SC2046
		set -- $(sed -n 's/.*KT-NET h2g //p' "$log" | tail -n 1)
		hst=$(kt_get "$log" h2g_status | cut -d' ' -f2)
		if [ $# -eq 3 ] && [ "$hst" = 200 ] && [ "$3" = "$in_md5" ] && [ "$1" -gt $body_bytes ] &&
			[ "$1" -lt $((body_bytes + 1024)) ]; then
			echo "NETBENCH $vmm $i host-to-guest $(mbps $body_bytes "$2") $2"
		else
			echo "not ok - net bench: $vmm round $i: host-to-guest transfer broken" \
				"(status '${hst}', ${1:-no} bytes, md5 ${3:-none}, want $in_md5)"
			echo "NETBENCH $vmm $i host-to-guest NA"
		fi

		# guest -> host: "STATUS BYTES SECONDS MD5" from the fetcher
		want=$(kt_get "$log" served_md5)
		# shellcheck disable=SC2046
		set -- $(cat "$W/g2h" 2>/dev/null)
		if [ $# -eq 4 ] && [ "$1" = 200 ] && [ -n "$want" ] && [ "$4" = "$want" ] &&
			[ "$2" -gt $body_bytes ] && [ "$2" -lt $((body_bytes + 1024)) ]; then
			echo "NETBENCH $vmm $i guest-to-host $(mbps $body_bytes "$3") $3"
		else
			echo "not ok - net bench: $vmm round $i: guest-to-host transfer broken" \
				"(status '${1:-}', ${2:-no} bytes, md5 ${4:-none}, guest served '${want}')"
			echo "NETBENCH $vmm $i guest-to-host NA"
		fi
	done
	i=$((i + 1))
done
KT_TIMEOUT=$limit
kill "$httpd_pid" 2>/dev/null
wait "$httpd_pid" 2>/dev/null
rm -rf "$W"
kt_ok "net benchmark: $RUNS round(s) of $VMMS, $MIB MiB each way"
