#!/bin/sh
# Boot acceptance, 4 vCPUs (SMP bring-up through the MADT): see boot_cpus1.sh.
. "$KT_LIB"
[ "$1" = run ] || exit 0
kt_boot_case boot-cpus4 kestrel 4
