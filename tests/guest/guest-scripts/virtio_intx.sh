#!/bin/sh
# Guest side of tests/virtio/cases/virtio.sh, the 1-vCPU runs (INTx with pci=nomsi, and MSI-X):
# vda = raw scratch, virtio-rng, virtio-console as a console (console=hvc0).
dd if=/dev/urandom of=/tmp/pat bs=65536 count=32 2>/dev/null
dd if=/tmp/pat of=/dev/vda bs=65536 count=32 conv=fsync 2>/dev/null && echo "KT vda_write=ok"
echo 3 >/proc/sys/vm/drop_caches
a=$(md5sum </tmp/pat | cut -d' ' -f1)
b=$(dd if=/dev/vda bs=65536 count=32 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$a" = "$b" ] && echo "KT vda_readback=ok"
echo "KT rng_current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "KT hwrng_bytes=$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
echo "KT msi_lines=$(grep -c 'PCI-MSI' /proc/interrupts)"
echo "KT ioapic_virtio=$(grep virtio /proc/interrupts | grep -c 'IO-APIC')"
grep virtio /proc/interrupts | tr -s ' ' | sed 's/^/KT-IRQ /'
echo "KT consoles=$(cut -d' ' -f1 /proc/consoles | tr '\n' ' ')"
echo "KT-HVC intx hello" >/dev/hvc0 && echo "KT hvc_write=ok"
# The host types a line on Kestrel's stdin; with console=hvc0 last, it goes to hvc0.
line=
echo "KT hvc-ready"
read -t 30 line </dev/hvc0
echo "KT hvc_in=$line"
echo "KT intx-done"
poweroff -f
