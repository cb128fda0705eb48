#!/bin/sh
# Guest side of tests/virtio/cases/virtio.sh, MSI-X run: vda = ext4 image, vdb = raw scratch,
# vdc = read-only qcow2, vdd = qcow2 overlay with a backing file, virtio-console. One "KT key=value" line per fact.
t() { echo "KT t_$1=$(cut -d' ' -f1 /proc/uptime)"; }
echo "KT nproc=$(nproc)"
echo "KT disks=$(ls /sys/block | grep '^vd' | tr '\n' ' ')"
echo "KT nics=$(ls /sys/class/net | grep -v '^lo$' | tr '\n' ' ')"
t start
mkdir -p /mnt
if mount -t ext4 /dev/vda /mnt; then
	echo "hello-from-kestrel" >/mnt/hello.txt
	mkdir -p /mnt/dir
	dd if=/dev/urandom of=/mnt/dir/blob bs=4096 count=16 2>/dev/null
	echo "KT blob_md5=$(md5sum /mnt/dir/blob | cut -d' ' -f1)"
	sync
	umount /mnt && echo "KT ext4=ok"
fi
t raw
dd if=/dev/urandom of=/tmp/pat bs=65536 count=64 2>/dev/null
if dd if=/tmp/pat of=/dev/vdb bs=65536 count=64 conv=fsync 2>/dev/null; then
	echo "KT vdb_write=ok"
fi
blockdev --flushbufs /dev/vdb 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
a=$(md5sum </tmp/pat | cut -d' ' -f1)
b=$(dd if=/dev/vdb bs=65536 count=64 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$a" = "$b" ] && echo "KT vdb_readback=ok"
t ro
echo "KT vdc_ro=$(cat /sys/block/vdc/ro)"
echo "KT vdc_head=$(dd if=/dev/vdc bs=512 count=1 2>/dev/null | head -c 15)"
if echo x | dd of=/dev/vdc bs=512 count=1 conv=fsync 2>/dev/null; then
	echo "KT vdc_write=accepted"
else
	echo "KT vdc_write=refused"
fi
t qcow2
echo "KT vdd_base=$(dd if=/dev/vdd bs=512 count=1 2>/dev/null | head -c 12)"
yes KESTREL-PATTERN | head -c 1048576 >/tmp/q
if dd if=/tmp/q of=/dev/vdd bs=65536 seek=16 count=16 conv=fsync 2>/dev/null; then
	echo "KT vdd_write=ok"
fi
blkdiscard -o 4194304 -l 1048576 /dev/vdd 2>/tmp/discard.err && echo "KT vdd_discard=ok" ||
	echo "KT vdd_discard_err=$(cat /tmp/discard.err)"
blockdev --flushbufs /dev/vdd 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
a=$(md5sum </tmp/q | cut -d' ' -f1)
b=$(dd if=/dev/vdd bs=65536 skip=16 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$a" = "$b" ] && echo "KT vdd_readback=ok"
echo "KT vdd_discarded_nonzero=$(dd if=/dev/vdd bs=65536 skip=64 count=16 2>/dev/null | tr -d '\000' | wc -c)"
t net
# Some traffic, so the NIC interrupts too: slirp's gateway answers ARP and ping.
if ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
	ping -c 1 -W 10 10.0.2.2 >/dev/null 2>&1; then
	echo "KT ping=ok"
fi
t irqs
grep virtio /proc/interrupts >/tmp/irqs
echo "KT msi_lines=$(grep -c 'PCI-MSI' /tmp/irqs)"
t hvc
if echo "KT-HVC hello from hvc0" >/dev/hvc0; then echo "KT hvc_write=ok"; fi
t end
echo "KT virtio-done"
tr -s ' ' </tmp/irqs | sed 's/^/KT-IRQ /' >/tmp/irqs.kt
cat /tmp/irqs.kt
poweroff -f
