#!/bin/sh
# Boot acceptance, 1 vCPU: kestrel run boots the Debian test guest to its "boot" script, which
# reports CPUs, memory, command line, ACPI tables, DMI product name and clock; powers off (ACPI).
. "$KT_LIB"
[ "$1" = run ] || exit 0
kt_boot_case boot-cpus1 kestrel 1
