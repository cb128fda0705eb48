#!/bin/sh
# Harness validation: QEMU (KVM) as the VMM boots the same guest through the same checks as
# the Kestrel cases (boot, reboot, multiboot). When these pass and a Kestrel case fails, the
# fault is Kestrel's, not the guest's, the nested L1 guest's or the log plumbing's.
# kt-needs: qemu
. "$KT_LIB"
case "$1" in
setup)
	# the multiboot kernel: the same one multiboot.sh builds
	sh "$KT_ROOT/tests/guest/cases/multiboot.sh" setup
	exit
	;;
run) ;;
*) exit 0 ;;
esac
kt_boot_case qemu-boot-cpus2 qemu 2
if [ -n "${KESTREL_LONG:-}" ] || [ -n "${KT_FULL_REFERENCE:-}" ]; then
	kt_reboot_case qemu-reboot qemu
	kt_multiboot_case qemu-multiboot qemu
fi
