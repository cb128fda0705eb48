#!/bin/sh
# kt-limit: 900
# virtio acceptance (guest side in tests/guest/guest-scripts/virtio*.sh), three boots:
#  1. 4 vCPUs, 4 disks and a NIC on MSI-X: an ext4 disk (the guest writes files; the host checks
#     them with debugfs in tests/virtio/test_virtio_guest.sh from the image this case sends
#     back), a raw scratch disk (write + read back), a read-only qcow2 disk (reads, refuses
#     writes), a qcow2 overlay on a qcow2 base (discard=on: read through, write, discard;
#     checked here and by qemu-img on the host), virtio-net (eth0; tests/net/ tests the traffic),
#     virtio-console (/dev/hvc0 reaches stdout).
#  2. 1 vCPU, pci=nomsi: a disk, virtio-rng (/dev/hwrng) and hvc0 as a kernel console, over INTx.
#  3. 1 vCPU, MSI-X: the same as 2 with message-signalled interrupts.
# virtio-rng is not in the 4-vCPU boot: under the nested harness (QEMU TCG emulating SVM), an
# L2 guest with several vCPUs and virtio-rng wedges L1 or triple-faults at the rng's first
# requests, with QEMU as the L2 VMM as well (L1: "soft lockup - CPU#0 stuck" in
# qemu-system-x86); the hwrng thread's stream of cross-CPU interrupts is what TCG's nested
# SVM gets wrong. On real hardware that boot is fine.
. "$KT_LIB"
ART=$KT_ART/virtio
case "$1" in
setup)
	rm -rf "$ART"
	mkdir -p "$ART"
	mkfs.ext4 -q -F -L ktest "$ART/ext4.img" 16M
	truncate -s 8M "$ART/scratch.raw"
	# vdd: a writable qcow2 overlay (discard=on) on a qcow2 base with two markers; the guest
	# reads the base through it, writes 1 MiB, discards 1 MiB; both files come back for
	# qemu-img check/compare on the host (tests/virtio/test_virtio_guest.sh).
	{ printf 'KESTREL-BASE'; head -c 4194292 /dev/zero; printf 'KESTREL-BASE-4M'; } >"$ART/base.raw"
	truncate -s 8M "$ART/base.raw"
	"$KESTREL" img convert -O qcow2 "$ART/base.raw" "$ART/base.qcow2"
	rm -f "$ART/base.raw"
	(cd "$ART" && "$KESTREL" img create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2 >/dev/null)
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
	--disk "$W/ro.qcow2,readonly=on" --disk "$W/overlay.qcow2,discard=on" --net user \
	--serial-virtio \
	--cmdline "console=ttyS0 kestrel.test=virtio $(kt_token)"
kt_ran virtio-msi "$log"
KT_TIMEOUT=$limit
echo "guest step times (uptime s): $(grep "KT t_" "$log" | tr '\n' ' ')" | kt_diag
[ "$(kt_get "$log" ext4)" = ok ] && gzip -c "$W/ext4.img" | base64 >"$KT_OUT/ext4.img.gz.b64"
if grep -q "KT virtio-done" "$log"; then
	kt_expect "virtio-msi: four virtio disks" "$(kt_get "$log" disks)" "vda vdb vdc vdd "
	kt_expect "virtio-msi: a virtio NIC" "$(kt_get "$log" nics)" "eth0 "
	kt_expect "virtio-msi: the NIC reaches slirp's gateway (ping 10.0.2.2)" \
		"$(kt_get "$log" ping)" ok
	kt_expect "virtio-msi: ext4 on vda mounted, written, unmounted" "$(kt_get "$log" ext4)" ok
	kt_expect "virtio-msi: raw vdb written" "$(kt_get "$log" vdb_write)" ok
	kt_expect "virtio-msi: raw vdb reads back what was written" \
		"$(kt_get "$log" vdb_readback)" ok
	kt_expect "virtio-msi: vdc is read-only" "$(kt_get "$log" vdc_ro)" 1
	kt_expect "virtio-msi: vdc (qcow2) content" "$(kt_get "$log" vdc_head)" KESTREL-RO-DISK
	kt_expect "virtio-msi: a write to vdc is refused" "$(kt_get "$log" vdc_write)" refused
	kt_expect "virtio-msi: vdd (qcow2 overlay) shows its backing file" \
		"$(kt_get "$log" vdd_base)" KESTREL-BASE
	kt_expect "virtio-msi: vdd written" "$(kt_get "$log" vdd_write)" ok
	kt_expect "virtio-msi: vdd reads back what was written" "$(kt_get "$log" vdd_readback)" ok
	kt_expect "virtio-msi: vdd discard accepted" "$(kt_get "$log" vdd_discard)" ok
	kt_expect "virtio-msi: vdd discarded range reads as zeros, not the backing file" \
		"$(kt_get "$log" vdd_discarded_nonzero)" 0
	if "$KESTREL" img check "$W/overlay.qcow2" >"$W/check.log" 2>&1; then
		kt_ok "virtio-msi: kestrel img check: the overlay the guest wrote is clean"
	else
		kt_fail "virtio-msi: kestrel img check reports problems in the overlay"
		kt_diag <"$W/check.log"
	fi
	(cd "$W" && tar cf - base.qcow2 overlay.qcow2 | gzip -c | base64) >"$KT_OUT/qcow2.tar.gz.b64"
	m=$(kt_get "$log" msi_lines)
	if [ -n "$m" ] && [ "$m" -ge 3 ]; then
		kt_ok "virtio-msi: $m virtio interrupt lines are PCI-MSI"
	else
		kt_fail "virtio-msi: virtio lines with PCI-MSI: '$m' (want >= 3)"
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
	# -v: and when a device's MSI-X vectors went onto KVM irqfds.
	n=$(grep -c "virtio-.*MSI-X vectors on irqfds" "$log.err")
	if [ "$n" -ge 6 ]; then
		kt_ok "virtio-msi: interrupts of the 6 devices on irqfds"
	else
		kt_fail "virtio-msi: $n MSI-X irqfd messages on stderr (want 6)"
	fi
	# Unanchored: the hvc0 bytes may land in the middle of a ttyS0 line.
	if grep -q "KT-HVC hello from hvc0" "$log"; then
		kt_ok "virtio-msi: a line written to /dev/hvc0 reached the console"
	else
		kt_fail "virtio-msi: the /dev/hvc0 line is not on stdout"
	fi
else
	kt_fail "virtio-msi: guest script did not finish (no 'KT virtio-done'; $(kt_end "$log"))"
	kt_show "$log"
fi

log=$KT_OUT/virtio-intx.log
truncate -s 0 "$W/scratch.raw"
truncate -s 8M "$W/scratch.raw"
KT_INPUT="typed-into-hvc0
" KT_INPUT_AFTER="KT hvc-ready"
# shellcheck disable=SC2086
kt_vm "$log" kestrel run $G --cpus 1 --console stdio -v \
	--disk "$W/scratch.raw" --rng --serial-virtio \
	--cmdline "console=ttyS0 console=hvc0 pci=nomsi kestrel.test=virtio_intx $(kt_token)"
KT_INPUT= KT_INPUT_AFTER=
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
	kt_expect "virtio-intx: a line typed on Kestrel's stdin arrived on /dev/hvc0" \
		"$(kt_get "$log" hvc_in)" typed-into-hvc0
	# -v: INTx lines bound to level-triggered irqfds with a resample fd (the disk, rng and
	# console; their driver's EOI re-raises a line the device still asserts).
	n=$(grep -c "virtio-.*INTx on a resampled irqfd" "$log.err")
	if [ "$n" -ge 3 ]; then
		kt_ok "virtio-intx: INTx of the 3 devices on resampled irqfds"
	else
		kt_fail "virtio-intx: $n INTx irqfd messages on stderr (want 3)"
	fi
else
	kt_fail "virtio-intx: guest script did not finish (no 'KT intx-done'; $(kt_end "$log"))"
	kt_show "$log"
fi
log=$KT_OUT/virtio-rng-msi.log
truncate -s 0 "$W/scratch.raw"
truncate -s 8M "$W/scratch.raw"
# shellcheck disable=SC2086
kt_vm "$log" kestrel run $G --cpus 1 --console stdio \
	--disk "$W/scratch.raw" --rng --serial-virtio \
	--cmdline "console=ttyS0 console=hvc0 kestrel.test=virtio_intx $(kt_token)"
kt_ran virtio-rng-msi "$log"
if grep -q "KT intx-done" "$log"; then
	kt_expect "virtio-rng-msi: raw vda reads back" "$(kt_get "$log" vda_readback)" ok
	kt_expect "virtio-rng-msi: /dev/hwrng gave 64 bytes" "$(kt_get "$log" hwrng_bytes)" 64
	case "$(kt_get "$log" rng_current)" in
	virtio_rng*) kt_ok "virtio-rng-msi: hw_random uses virtio_rng" ;;
	*) kt_fail "virtio-rng-msi: rng_current is '$(kt_get "$log" rng_current)'" ;;
	esac
	m=$(kt_get "$log" msi_lines)
	if [ -n "$m" ] && [ "$m" -ge 3 ]; then
		kt_ok "virtio-rng-msi: $m interrupt lines are PCI-MSI"
	else
		kt_fail "virtio-rng-msi: PCI-MSI lines: '$m' (want >= 3)"
		grep "^KT-IRQ" "$log" | kt_diag
	fi
else
	kt_fail "virtio-rng-msi: guest script did not finish (no 'KT intx-done'; $(kt_end "$log"))"
	kt_show "$log"
fi
exit 0
