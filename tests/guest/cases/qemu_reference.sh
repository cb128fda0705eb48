#!/bin/sh
# Harness validation: QEMU (KVM) as the VMM boots the same guest through the same checks as
# the Kestrel cases (boot, reboot, multiboot). When these pass and a Kestrel case fails, the
# fault is Kestrel's, not the guest's, the nested L1 guest's or the log plumbing's.
# It costs one to three more L2 boots (30-180 s nested on a loaded machine), so it runs with
# make check-long (KESTREL_LONG=1) or KT_REFERENCE=1 (boot only) / KT_FULL_REFERENCE=1 (all).
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
if [ -z "${KESTREL_LONG:-}${KT_REFERENCE:-}${KT_FULL_REFERENCE:-}" ]; then
	kt_skip "qemu-reference: QEMU as the L2 VMM through the same checks" \
		"harness validation runs with make check-long, KT_REFERENCE=1 or KT_FULL_REFERENCE=1"
	exit 0
fi
kt_boot_case qemu-boot-cpus2 qemu 2
if [ -n "${KESTREL_LONG:-}" ] || [ -n "${KT_FULL_REFERENCE:-}" ]; then
	kt_reboot_case qemu-reboot qemu
	kt_multiboot_case qemu-multiboot qemu
fi
