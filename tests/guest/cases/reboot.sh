#!/bin/sh
# Reboot: without --no-reboot a guest "reboot -f" resets the VM and the guest boots again;
# CMOS NVRAM keeps the boot counter across the reset. Exit 0 after the second boot's poweroff.
. "$KT_LIB"
[ "$1" = run ] || exit 0
kt_reboot_case reboot kestrel
