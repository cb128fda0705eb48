#!/bin/sh
# kt-limit: 900
# virtio acceptance (guest side in tests/guest/guest-scripts/virtio*.sh), two boots:
#  1. 4 vCPUs, MSI-X: an ext4 disk (the guest writes files; the host checks them with debugfs
#     in tests/virtio/test_virtio_guest.sh from the image this case sends back), a raw scratch
#     disk (write + read back), a read-only qcow2 disk (reads, refuses writes), virtio-rng
#     (/dev/hwrng), virtio-console (/dev/hvc0 reaches stdout).
#  2. 1 vCPU, pci=nomsi: the same devices over INTx, hvc0 as a kernel console.
. "$KT_LIB"
ART=$KT_ART/virtio
case "$1" in
setup)
	rm -rf "$ART"
	mkdir -p "$ART"
	mkfs.ext4 -q -F -L ktest "$ART/ext4.img" 16M
	truncate -s 8M "$ART/scratch.raw"
	{ printf 'KESTREL-RO-DISK'; head -c 1048561 /dev/zero; } >"$ART/ro.raw"
	"$KESTREL" img convert -O qcow2 "$ART/ro.raw" "$ART/ro.qcow2" 2>/dev/null ||
		qemu-img convert -O qcow2 "$ART/ro.raw" "$ART/ro.qcow2"
	rm -f "$ART/ro.raw"
	exit 0
	;;
run) ;;
*) exit 0 ;;
esac

W=/tmp/kt-virtio
rm -rf "$W"
mkdir -p "$W"
cp "$ART"/* "$W/"
G="--kernel $KT_GUEST/vmlinuz --initrd $KT_GUEST/initramfs.cpio.gz --mem 512M --no-reboot"

log=$KT_OUT/virtio-msi.log
# Four vCPUs under nested TCG on a loaded host are slow: give this run twice the usual time.
limit=$KT_TIMEOUT
KT_TIMEOUT=$((KT_TIMEOUT * 2))
# shellcheck disable=SC2086
kt_vm "$log" kestrel run $G --cpus 4 --console stdio -v \
	--disk "$W/ext4.img,format=raw" --disk "$W/scratch.raw,format=raw,discard=on" \
	--disk "$W/ro.qcow2,readonly=on" --rng --serial-virtio \
	--cmdline "console=ttyS0 kestrel.test=virtio $(kt_token)"
kt_ran virtio-msi "$log"
KT_TIMEOUT=$limit
echo "guest step times (uptime s): $(grep "KT t_" "$log" | tr '\n' ' ')" | kt_diag
[ "$(kt_get "$log" ext4)" = ok ] && gzip -c "$W/ext4.img" | base64 >"$KT_OUT/ext4.img.gz.b64"
if grep -q "KT virtio-done" "$log"; then
	kt_expect "virtio-msi: three virtio disks" "$(kt_get "$log" disks)" "vda vdb vdc "
	kt_expect "virtio-msi: ext4 on vda mounted, written, unmounted" "$(kt_get "$log" ext4)" ok
	kt_expect "virtio-msi: raw vdb written" "$(kt_get "$log" vdb_write)" ok
	kt_expect "virtio-msi: raw vdb reads back what was written" \
		"$(kt_get "$log" vdb_readback)" ok
	kt_expect "virtio-msi: vdc is read-only" "$(kt_get "$log" vdc_ro)" 1
	kt_expect "virtio-msi: vdc (qcow2) content" "$(kt_get "$log" vdc_head)" KESTREL-RO-DISK
	kt_expect "virtio-msi: a write to vdc is refused" "$(kt_get "$log" vdc_write)" refused
	kt_expect "virtio-msi: /dev/hwrng gave 64 bytes" "$(kt_get "$log" hwrng_bytes)" 64
	case "$(kt_get "$log" rng_current)" in
	virtio_rng*) kt_ok "virtio-msi: hw_random uses virtio_rng" ;;
	*) kt_fail "virtio-msi: rng_current is '$(kt_get "$log" rng_current)'" ;;
	esac
	m=$(kt_get "$log" msi_lines)
	if [ -n "$m" ] && [ "$m" -ge 4 ]; then
		kt_ok "virtio-msi: $m virtio interrupt lines are PCI-MSI"
	else
		kt_fail "virtio-msi: virtio lines with PCI-MSI: '$m' (want >= 4)"
		grep "^KT-IRQ" "$log" | kt_diag
	fi
	# -v: Kestrel says when a device's doorbells moved onto KVM ioeventfds.
	n=$(grep -c "virtio-blk.*doorbells on ioeventfd" "$log.err")
	if [ "$n" -ge 3 ]; then
		kt_ok "virtio-msi: doorbells of the 3 disks on ioeventfds"
	else
		kt_fail "virtio-msi: $n ioeventfd doorbell messages on stderr (want 3+)"
		tail -n 5 "$log.err" | kt_diag
	fi
	# Unanchored: the hvc0 bytes may land in the middle of a ttyS0 line.
	if grep -q "KT-HVC hello from hvc0" "$log"; then
		kt_ok "virtio-msi: a line written to /dev/hvc0 reached the console"
	else
		kt_fail "virtio-msi: the /dev/hvc0 line is not on stdout"
	fi
else
	kt_fail "virtio-msi: guest script did not finish (no 'KT virtio-done')"
	kt_show "$log"
fi

log=$KT_OUT/virtio-intx.log
truncate -s 0 "$W/scratch.raw"
truncate -s 8M "$W/scratch.raw"
# shellcheck disable=SC2086
kt_vm "$log" kestrel run $G --cpus 1 --console stdio \
	--disk "$W/scratch.raw" --rng --serial-virtio \
	--cmdline "console=ttyS0 console=hvc0 pci=nomsi kestrel.test=virtio_intx $(kt_token)"
kt_ran virtio-intx "$log"
if grep -q "KT intx-done" "$log"; then
	kt_expect "virtio-intx: raw vda written" "$(kt_get "$log" vda_write)" ok
	kt_expect "virtio-intx: vda reads back" "$(kt_get "$log" vda_readback)" ok
	kt_expect "virtio-intx: /dev/hwrng gave 64 bytes" "$(kt_get "$log" hwrng_bytes)" 64
	kt_expect "virtio-intx: no PCI-MSI with pci=nomsi" "$(kt_get "$log" msi_lines)" 0
	i=$(kt_get "$log" ioapic_virtio)
	if [ -n "$i" ] && [ "$i" -ge 1 ]; then
		kt_ok "virtio-intx: virtio interrupts on IO-APIC lines ($i)"
	else
		kt_fail "virtio-intx: no virtio interrupt on an IO-APIC line"
		grep "^KT-IRQ" "$log" | kt_diag
	fi
	case " $(kt_get "$log" consoles) " in
	*" hvc0 "*) kt_ok "virtio-intx: hvc0 is a kernel console" ;;
	*) kt_fail "virtio-intx: /proc/consoles is '$(kt_get "$log" consoles)'" ;;
	esac
	if grep -q "KT-HVC intx hello" "$log"; then
		kt_ok "virtio-intx: /dev/hvc0 output reached the console"
	else
		kt_fail "virtio-intx: the /dev/hvc0 line is not on stdout"
	fi
else
	kt_fail "virtio-intx: guest script did not finish (no 'KT intx-done')"
	kt_show "$log"
fi
exit 0
